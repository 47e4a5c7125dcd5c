"""The ``quantize`` stage: the int8 model, scored on the test split and timed beside fp32,
and the gate that picks the primary artifact (``primary_artifact``).

Calibration uses training images only; the gate's rule is in ``trainer.quantize``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from protocols import InputSpec

from ..data import ImageRecord
from ..inference import OnnxModel, Predictions, load_inputs, predict
from ..preprocess import F32Array, normalize
from ..quantize import GateDecision, compare_latency, decide, quantize_int8
from ..runner import Figure, RunContext
from .data import Splits
from .export import Exported

Precision = Literal["fp32", "int8"]


@dataclass(frozen=True)
class Quantized:
    int8_path: Path
    gate: GateDecision
    fp32_test: Predictions  # both models on the test split: the gate's accuracies
    int8_test: Predictions

    def figures(self) -> dict[str, Figure]:
        return {"primary": "int8" if self.gate.ship_int8 else "fp32",
                "accuracy_drop_points": self.gate.accuracy_drop_points,
                "latency_ratio": self.gate.latency_ratio, "size_ratio": self.gate.size_ratio}


@dataclass(frozen=True)
class Primary:
    """The artifact agents run, and why that one."""

    path: Path
    precision: Precision
    reason: str


def primary_artifact(ctx: RunContext) -> Primary:
    """int8 when the quantize stage ran and its gate passed, else the fp32 model."""
    fp32, quantized = ctx[Exported].model_path, ctx.get(Quantized)
    if quantized is None:
        return Primary(fp32, "fp32", "fp32: int8 quantization is off (quantize = false)")
    if quantized.gate.ship_int8:
        return Primary(quantized.int8_path, "int8", quantized.gate.reason)
    return Primary(fp32, "fp32", quantized.gate.reason)


def calibration_batches(
    records: Sequence[ImageRecord], spec: InputSpec, count: int, batch_size: int = 32
) -> list[F32Array]:
    """Preprocessed NCHW batches of up to ``count`` images (file-hash order: label-blind)."""
    sample = sorted(records, key=lambda r: r.sha256)[:count]
    batches: list[F32Array] = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, len(sample), batch_size):
            images = load_inputs(sample[start : start + batch_size], spec, pool)
            batches.append(np.stack([normalize(im, spec) for im in images]))
    return batches


def _accuracy(p: Predictions) -> float:
    return float((p.logits.argmax(axis=1) == p.labels).mean()) if len(p.labels) else 0.0


def quantize_stage(ctx: RunContext) -> Quantized:
    s, splits, fp32_path = ctx.settings, ctx[Splits], ctx[Exported].model_path
    int8_path = ctx.out_path("model.int8.onnx")
    fp32_test = predict(OnnxModel(fp32_path), splits.test, splits.spec)
    quantize_int8(fp32_path, int8_path,
                  calibration_batches(splits.train, splits.spec, s.calibration_images))
    int8_test = predict(OnnxModel(int8_path), splits.test, splits.spec)
    sample = calibration_batches(splits.test, splits.spec, 1)[0][:1]
    fp32_ms, int8_ms = compare_latency(fp32_path, int8_path, sample, s.latency_threads)
    gate = decide(
        fp32_accuracy=_accuracy(fp32_test),
        int8_accuracy=_accuracy(int8_test),
        fp32_latency_ms=fp32_ms,
        int8_latency_ms=int8_ms,
        fp32_size_bytes=fp32_path.stat().st_size,
        int8_size_bytes=int8_path.stat().st_size,
        budget_points=s.int8_budget_points,
        max_latency_ratio=s.int8_max_latency_ratio,
        latency_batch=1,
        latency_threads=s.latency_threads,
        test_samples=len(splits.test),
    )
    return Quantized(int8_path, gate, fp32_test, int8_test)


__all__ = ["Primary", "Quantized", "calibration_batches", "primary_artifact", "quantize_stage"]
