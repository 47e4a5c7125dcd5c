"""Temperature scaling (Guo et al., 2017) fitted on the validation split.

One scalar ``T``: calibrated confidence is ``softmax(logits / T)``. The agents
apply it (``OutputSpec.temperature``) before they bin confidence, and the
control plane estimates accuracy without labels from it. It is fitted on what the
agent classifies: whole validation images for a whole-frame model, the validation
crops (animals alone or beside another, "other" crops) for a regions model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32Array = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]


def softmax(logits: F32Array, temperature: float = 1.0) -> npt.NDArray[np.float64]:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def nll(logits: F32Array, labels: IntArray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    zmax = z.max(axis=1, keepdims=True)
    log_norm = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(z)), labels]))


def expected_calibration_error(
    probs: npt.NDArray[np.float64], labels: IntArray, bins: int = 15
) -> float:
    """ECE: |accuracy - confidence| averaged over equal-width confidence bins."""
    if len(labels) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    which = np.clip((conf * bins).astype(int), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    samples: int
    fitted_on: str = "validation images"

    def summary(self) -> dict[str, Any]:
        return {k: v if isinstance(v, str) else float(v) for k, v in asdict(self).items()}


def fit_temperature(
    logits: F32Array, labels: IntArray, bounds: tuple[float, float] = (0.05, 20.0),
    fitted_on: str = "validation images",
) -> TemperatureFit:
    """The temperature that minimises validation NLL (golden-section search on log T).

    NLL is convex in 1/T, hence unimodal in log T: the search finds the optimum.
    """
    labels = np.asarray(labels)
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    for _ in range(80):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    temperature = math.exp((lo + hi) / 2)
    return TemperatureFit(
        temperature=temperature,
        nll_before=nll(logits, labels),
        nll_after=nll(logits, labels, temperature),
        ece_before=expected_calibration_error(softmax(logits), labels),
        ece_after=expected_calibration_error(softmax(logits, temperature), labels),
        samples=len(labels),
        fitted_on=fitted_on,
    )


__all__ = ["TemperatureFit", "expected_calibration_error", "fit_temperature", "nll", "softmax"]
