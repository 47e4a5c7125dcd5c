"""Score a registered model version on labelled images with ONNX Runtime.

The worker compares challenger and champion on the same held-out images. The
preprocessing is the manifest's ``InputSpec`` formula (bilinear resize, colour
order, scale, mean, std). Needs onnxruntime and OpenCV: the worker host has the
trainer extra installed anyway, so these are imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocols import InputSpec

from ..errors import InvalidRequestError
from ..store.artifacts import ArtifactStore

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


@dataclass(frozen=True)
class LabelledImage:
    data: bytes  # encoded (JPEG/PNG)
    label: str
    source: str  # file path or sample:<id>


def image_folder(root: Path) -> list[LabelledImage]:
    """Every image of an ImageFolder (one sub-folder per label)."""
    if not root.is_dir():
        raise InvalidRequestError(f"held-out folder {root} does not exist: set worker.holdout_dir")
    return [
        LabelledImage(path.read_bytes(), label_dir.name, str(path))
        for label_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(label_dir.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def _tensor(data: bytes, spec: InputSpec) -> Any:
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    img = cv2.resize(bgr, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    if spec.color_order == "RGB":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    x = (img.astype(np.float32) * np.float32(spec.scale) - np.asarray(spec.mean, np.float32))
    x /= np.asarray(spec.std, np.float32)
    return x.transpose(2, 0, 1)


def accuracy(
    store: ArtifactStore, version_spec: dict[str, Any], images: Sequence[LabelledImage]
) -> float:
    """Share of ``images`` the version's primary artifact classifies right (undecodable
    images and labels the model does not know count as wrong)."""
    import onnxruntime as ort

    if not images:
        raise InvalidRequestError("no held-out images: set worker.holdout_dir or label samples")
    spec = InputSpec.model_validate(version_spec["input"])
    labels: list[str] = list(version_spec["labels"])
    logits_name = version_spec.get("outputs", {}).get("logits", "logits")
    path = store.path(str(version_spec["primary_sha256"]))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    correct = 0
    for image in images:
        x = _tensor(image.data, spec)
        if x is None or image.label not in labels:
            continue
        (logits,) = session.run([logits_name], {input_name: x[None]})
        correct += int(labels[int(np.argmax(logits[0]))] == image.label)
    return correct / len(images)


__all__ = ["LabelledImage", "accuracy", "image_folder"]
