"""Accuracy of a trained model on the frames of a ``make_video`` clip, as an agent sees them.

Reads the .avi with cv2, preprocesses every frame per the registration's InputSpec
(``trainer.preprocess.preprocess``, the agents' formula), runs the ONNX model with
ONNX Runtime and compares with the sidecar JSON's per-segment labels.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from protocols import ModelVersionCreate

from .inference import OnnxModel
from .preprocess import preprocess


def video_accuracy(out_dir: Path, video: Path, model_path: Path | None = None) -> dict[str, Any]:
    reg = ModelVersionCreate.model_validate_json((out_dir / "registration.json").read_text())
    model = OnnxModel(model_path or out_dir / "model.onnx")
    meta = json.loads(video.with_suffix(".json").read_text())
    truth: dict[int, str] = {}
    for seg in meta["segments"]:
        for f in range(seg["start_frame"], seg["end_frame"]):
            truth[f] = seg["label"]
    cap = cv2.VideoCapture(str(video))
    confusion: Counter[tuple[str, str]] = Counter()
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        logits, _ = model.run(preprocess(np.asarray(frame, np.uint8), reg.input)[None])
        confusion[(truth[index], reg.labels[int(np.argmax(logits[0]))])] += 1
        index += 1
    cap.release()
    total = sum(confusion.values())
    correct = sum(n for (t, p), n in confusion.items() if t == p)
    per_label = {
        label: {
            "frames": sum(n for (t, _), n in confusion.items() if t == label),
            "recall": confusion[(label, label)]
            / max(sum(n for (t, _), n in confusion.items() if t == label), 1),
        }
        for label in reg.labels
    }
    return {"frames": total, "accuracy": correct / max(total, 1), "per_label": per_label,
            "confusion": {f"{t}->{p}": n for (t, p), n in sorted(confusion.items())}}


__all__ = ["video_accuracy"]
