"""The heavier stages of a run, kept out of ``pipeline`` so it reads as the sequence it is.

``train_stage``: one training (or a budgeted search) from seeded settings.
``quantization_stage``: int8 model, its test accuracy and the gate's verdict.
``evaluation_stage``: test metrics of the primary artifact, overall and per slice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from protocols import InputSpec

from .calibrate import TemperatureFit
from .config import TrainerSettings
from .data import DatasetScan, ImageDataset, ImageRecord
from .errors import TrainerError
from .evaluate import classification_report
from .inference import OnnxModel, Predictions, load_inputs, predict
from .model import PetNet
from .preprocess import F32Array, normalize
from .quantize import GateDecision, compare_latency, decide, quantize_int8
from .search import SearchResult, run_search
from .slices import load_slices, slice_members
from .train import EpochStats, TrainOutcome, deterministic, train_model


def input_spec(settings: TrainerSettings) -> InputSpec:
    """The InputSpec of the configured network; agents preprocess exactly so.

    PetNet (from scratch) uses the ImageNet mean/std; Lite0 keeps the normalisation its
    TensorFlow weights were trained with, ``(x - 127) / 128`` on 0-255 RGB (measured
    here: zero-shot on the real photos it puts more of its top-1 predictions on cat and
    dog classes than with the ImageNet mean/std).
    """
    size = settings.input_size
    if settings.arch == "lite0":
        return InputSpec(width=size, height=size, scale=1.0, mean=(127.0, 127.0, 127.0),
                         std=(128.0, 128.0, 128.0))
    return InputSpec(width=size, height=size)


def train_stage(
    settings: TrainerSettings,
    scan: DatasetScan,
    console: Console,
    show_progress: bool,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> tuple[TrainOutcome, TrainerSettings, SearchResult | None]:
    """Train (or search); return the outcome, the settings that produced it, the search."""
    spec = input_spec(settings)
    cache = settings.cache_mb * 2**20
    train_set = ImageDataset(
        scan.split("train"), spec, augment=settings.augment, seed=settings.seed,
        cache_bytes=cache,
    )
    val_set = ImageDataset(scan.split("val"), spec, cache_bytes=cache)

    def train_one(s: TrainerSettings) -> TrainOutcome:
        with deterministic(s.seed):
            model = PetNet(
                len(scan.labels), s.width_mult, s.input_size, arch=s.arch,
                bn_momentum=s.bn_momentum,
            )
            return train_model(
                model, train_set, val_set, s, console=console, show_progress=show_progress,
                on_epoch=on_epoch,
            )

    if settings.arch == "lite0":
        if settings.search_trials > 1:
            raise TrainerError("the hyper-parameter search tunes PetNet (arch compact or "
                               "small); with arch lite0 set search_trials to 0")
        from .finetune import train_lite0

        with deterministic(settings.seed):
            outcome = train_lite0(len(scan.labels), train_set, val_set, settings, console,
                                  show_progress, on_epoch)
        return outcome, settings, None
    if settings.search_trials <= 1:
        return train_one(settings), settings, None
    search = run_search(settings, settings.search_trials, settings.search_budget_s, train_one)
    return search.best, settings.model_copy(update=search.best_params), search


def _sorted_sample(records: Sequence[ImageRecord], count: int) -> list[ImageRecord]:
    """Up to ``count`` records in file-hash order: a deterministic, label-blind sample."""
    return sorted(records, key=lambda r: r.sha256)[:count]


def calibration_batches(
    records: Sequence[ImageRecord], spec: InputSpec, count: int, batch_size: int = 32
) -> list[F32Array]:
    """Preprocessed NCHW batches of up to ``count`` training images for int8 calibration."""
    from concurrent.futures import ThreadPoolExecutor

    sample = _sorted_sample(records, count)
    batches: list[F32Array] = []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for start in range(0, len(sample), batch_size):
            images = load_inputs(sample[start : start + batch_size], spec, pool)
            batches.append(np.stack([normalize(im, spec) for im in images]))
    return batches


def quantization_stage(
    settings: TrainerSettings,
    fp32_path: Path,
    int8_path: Path,
    train_records: Sequence[ImageRecord],
    test_records: Sequence[ImageRecord],
    fp32_test: Predictions,
    spec: InputSpec,
) -> tuple[GateDecision, Predictions]:
    """Quantize with training images, score int8 on the test split, time both, decide."""
    quantize_int8(
        fp32_path, int8_path, calibration_batches(train_records, spec, settings.calibration_images)
    )
    int8_test = predict(OnnxModel(int8_path), test_records, spec)
    sample = calibration_batches(test_records, spec, 1)[0][:1]
    fp32_ms, int8_ms = compare_latency(fp32_path, int8_path, sample, settings.latency_threads)

    def accuracy(p: Predictions) -> float:
        return float((p.logits.argmax(axis=1) == p.labels).mean()) if len(p.labels) else 0.0

    gate = decide(
        fp32_accuracy=accuracy(fp32_test),
        int8_accuracy=accuracy(int8_test),
        fp32_latency_ms=fp32_ms,
        int8_latency_ms=int8_ms,
        fp32_size_bytes=fp32_path.stat().st_size,
        int8_size_bytes=int8_path.stat().st_size,
        budget_points=settings.int8_budget_points,
        max_latency_ratio=settings.int8_max_latency_ratio,
        latency_batch=1,
        latency_threads=settings.latency_threads,
        test_samples=len(test_records),
    )
    return gate, int8_test


def evaluation_stage(
    data_dir: Path,
    test_records: Sequence[ImageRecord],
    test_pred: Predictions,
    labels: list[str],
    calibration: TemperatureFit,
) -> dict[str, Any]:
    """Test report of the primary model, with ``slices`` when the data has slice tags."""
    report = classification_report(test_pred.logits, test_pred.labels, labels,
                                   calibration.temperature)
    slices: dict[str, Any] = {}
    for name, members in slice_members(test_records, load_slices(data_dir)).items():
        idx = np.asarray(members, dtype=np.int64)
        slices[name] = classification_report(
            test_pred.logits[idx] if len(idx) else np.zeros((0, len(labels)), np.float32),
            test_pred.labels[idx], labels, calibration.temperature,
        )
    return {"test": report, "slices": slices}


__all__ = [
    "calibration_batches", "evaluation_stage", "input_spec", "quantization_stage", "train_stage",
]
