"""Run the exported ONNX model over dataset records with ONNX Runtime (CPU).

Evaluation, the drift profile and the golden inputs all go through the fp32
ONNX artifact that ships, not through torch, so they describe what agents run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from protocols import InputSpec
from protocols.features import input_stats

from .data import ImageRecord
from .errors import TrainerError
from .preprocess import normalize, read_image, resize_to_input

F32Array = npt.NDArray[np.float32]
U8Image = npt.NDArray[np.uint8]
# Changes a decoded BGR image before the resize (e.g. a synthetic camera shift).
Transform = Callable[[U8Image, ImageRecord], U8Image]


class OnnxModel:
    """An ONNX Runtime session with the parkwatch input/output names."""

    def __init__(self, path: Path, input_name: str = "input") -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise TrainerError(f"ONNX Runtime cannot load {path}: {exc}") from None
        self.input_name = input_name

    def run(self, batch: F32Array) -> tuple[F32Array, F32Array]:
        """``(logits, embedding)`` of an NCHW float32 batch."""
        logits, embedding = self.session.run(["logits", "embedding"], {self.input_name: batch})
        return np.asarray(logits, np.float32), np.asarray(embedding, np.float32)


@dataclass(frozen=True)
class Predictions:
    """Model outputs over a list of records, in record order."""

    logits: F32Array  # N x K
    embeddings: F32Array  # N x D
    labels: npt.NDArray[np.int64]  # N, true label indices
    stats: F32Array | None = None  # N x 4 input statistics (INPUT_STAT_NAMES) if asked for


def load_inputs(
    records: Sequence[ImageRecord],
    spec: InputSpec,
    pool: ThreadPoolExecutor,
    transform: Transform | None = None,
) -> list[U8Image]:
    """The resized input images (uint8, spec colour order) of ``records``, decoded in parallel."""

    def load(r: ImageRecord) -> U8Image:
        img = read_image(r.path)
        return resize_to_input(img if transform is None else transform(img, r), spec)

    return list(pool.map(load, records))


def predict(
    model: OnnxModel,
    records: Sequence[ImageRecord],
    spec: InputSpec,
    batch_size: int = 64,
    with_input_stats: bool = False,
    transform: Transform | None = None,
) -> Predictions:
    """Decode, preprocess and run ``records`` batch by batch (streaming, bounded memory)."""
    logits: list[F32Array] = []
    embeddings: list[F32Array] = []
    stats: list[F32Array] = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, len(records), batch_size):
            images = load_inputs(records[start : start + batch_size], spec, pool, transform)
            if with_input_stats:
                rgb = images if spec.color_order == "RGB" else [im[..., ::-1] for im in images]
                stats.extend(input_stats(im) for im in rgb)
            batch = np.stack([normalize(im, spec) for im in images])
            out_logits, out_embedding = model.run(batch)
            logits.append(out_logits)
            embeddings.append(out_embedding)
    return Predictions(
        logits=np.concatenate(logits) if logits else np.zeros((0, 0), np.float32),
        embeddings=np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float32),
        labels=np.array([r.label_index for r in records], dtype=np.int64),
        stats=np.stack(stats).astype(np.float32) if with_input_stats and stats else None,
    )


__all__ = ["OnnxModel", "Predictions", "Transform", "load_inputs", "predict"]
