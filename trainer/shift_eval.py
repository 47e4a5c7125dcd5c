"""Accuracy and drift of the shipped model on test images under synthetic camera shifts.

Each camera shift of :mod:`trainer.synth.shifts` (night, IR, blur, rain, tilt...) is applied
to the full-size held-out test images before the resize, as a camera would see
them. Drift is the population stability index (PSI) of the model's telemetry on
those images against the reference profile, binned with the profile's own edges
as an agent bins it: calibrated top-class confidence, each input statistic and
each embedding projection. The unshifted test split gives the noise floor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from protocols import INPUT_STAT_NAMES, Histogram, InputSpec, ReferenceProfile
from protocols.features import bin_counts

from .calibrate import softmax
from .data import ImageRecord
from .inference import OnnxModel, Predictions, U8Image, predict
from .synth.shifts import apply_shift

ShiftFn = Callable[[npt.NDArray[np.uint8], str, float, np.random.Generator], npt.NDArray[np.uint8]]


def psi(reference: Sequence[float], current: Sequence[float], pseudo: float = 0.5) -> float:
    """Population stability index sum((c - r) ln(c / r)) of two histograms' shares.

    ``pseudo`` counts are added to every bin of both (additive smoothing), so an empty
    bin in a small sample does not read as major drift. Rule of thumb: < 0.1 stable,
    0.1-0.25 moderate, > 0.25 major.
    """
    r = np.asarray(reference, np.float64) + pseudo
    c = np.asarray(current, np.float64) + pseudo
    if r.shape != c.shape or r.size == 0:
        raise ValueError(f"psi needs two histograms of the same bins, got {r.size} and {c.size}")
    r, c = r / r.sum(), c / c.sum()
    return float(((c - r) * np.log(c / r)).sum())


def _psi_of(values: npt.NDArray[np.floating[Any]], ref: Histogram) -> float:
    return psi(ref.counts, bin_counts(values, ref.edges).tolist())


def drift_figures(
    pred: Predictions, profile: ReferenceProfile, temperature: float
) -> dict[str, Any]:
    """PSI of confidence, input statistics and embedding projections against ``profile``."""
    confidence = softmax(pred.logits, temperature).max(axis=1)
    mean = np.asarray(profile.embedding_mean, np.float64)
    axes = np.asarray(profile.embedding_axes, np.float64)
    projections = (pred.embeddings.astype(np.float64) - mean) @ axes.T
    embedding = [_psi_of(p, h) for p, h in zip(projections.T, profile.embedding_hists,
                                                 strict=True)]
    inputs: dict[str, float] = {}
    if pred.stats is not None:
        inputs = {name: _psi_of(col, profile.input_stats[name])
                  for name, col in zip(INPUT_STAT_NAMES, pred.stats.T, strict=True)}
    return {
        "psi_confidence": _psi_of(confidence, profile.confidence),
        "psi_embedding": embedding,
        "psi_embedding_max": max(embedding) if embedding else 0.0,
        "psi_input_stats": inputs,
        "mean_confidence": float(confidence.mean()) if len(confidence) else 0.0,
    }


def _accuracy(pred: Predictions) -> float:
    return float((pred.logits.argmax(axis=1) == pred.labels).mean()) if len(pred.labels) else 0.0


def shift_stage(
    model: OnnxModel,
    records: Sequence[ImageRecord],
    spec: InputSpec,
    profile: ReferenceProfile,
    temperature: float,
    shifts: Sequence[str],
    severity: float,
    seed: int = 0,
    shift_fn: ShiftFn | None = None,
) -> dict[str, Any]:
    """Accuracy and drift of ``model`` on ``records`` unshifted and under each shift."""
    base = predict(model, records, spec, with_input_stats=True)
    base_acc = _accuracy(base)
    out: dict[str, Any] = {
        "severity": severity,
        "samples": len(records),
        "baseline": {"accuracy": base_acc, **drift_figures(base, profile, temperature)},
        "shifts": {},
    }
    fn: ShiftFn = shift_fn or apply_shift
    for shift in shifts:

        def transform(img: U8Image, record: ImageRecord, shift: str = shift) -> U8Image:
            # Seeded per image and shift: the same test image gets the same noise every run.
            key = int.from_bytes(hashlib.sha256(f"{seed}:{shift}:{record.sha256}".encode())
                                 .digest()[:8], "big")
            return fn(img, shift, severity, np.random.default_rng(key))

        pred = predict(model, records, spec, with_input_stats=True, transform=transform)
        acc = _accuracy(pred)
        out["shifts"][shift] = {
            "accuracy": acc,
            "accuracy_drop_points": (base_acc - acc) * 100.0,
            **drift_figures(pred, profile, temperature),
        }
    return out


__all__ = ["drift_figures", "psi", "shift_stage"]
