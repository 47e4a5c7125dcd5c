"""Drift statistics from binned counts (mergeable histograms; no raw values needed).

Each statistic comes with an alarm level calibrated to the sample sizes
(docs/drift.md): with no drift, PSI is distributed roughly as
``(1/n + 1/m) * chi2(bins - 1)``, so its alarm level is that distribution's
``1 - alpha`` quantile; the Jensen-Shannon divergence is about PSI / 8 for small
differences, which gives the JS distance's level; the binned KS statistic is at
most the raw one, so the asymptotic two-sample KS critical value is a
conservative level; chi-square on class counts uses its own p-value.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import special, stats
from scipy.spatial.distance import jensenshannon

Counts = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
# Pseudo-count added to every bin before PSI's logarithm, so an empty bin is finite.
PSI_PSEUDO_COUNT = 0.5


def _counts(values: Counts) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("counts must be a non-empty 1-D sequence")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("counts must be finite and non-negative")
    return arr


def _pair(reference: Counts, current: Counts) -> tuple[FloatArray, FloatArray]:
    ref, cur = _counts(reference), _counts(current)
    if ref.shape != cur.shape:
        raise ValueError(
            f"histograms have {ref.size} and {cur.size} bins: both must use the reference's edges"
        )
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("a histogram with no samples cannot be compared")
    return ref, cur


def psi(reference: Counts, current: Counts) -> float:
    """Population stability index, sum((q - p) * ln(q / p)), with pseudo-counts."""
    ref, cur = _pair(reference, current)
    p = (ref + PSI_PSEUDO_COUNT) / (ref.sum() + PSI_PSEUDO_COUNT * ref.size)
    q = (cur + PSI_PSEUDO_COUNT) / (cur.sum() + PSI_PSEUDO_COUNT * cur.size)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Counts, current: Counts) -> float:
    """Jensen-Shannon distance (base 2, so in [0, 1])."""
    ref, cur = _pair(reference, current)
    return float(jensenshannon(ref, cur, base=2.0))


def ks_binned(reference: Counts, current: Counts) -> float:
    """Two-sample KS statistic from the CDFs at the bin edges (a lower bound of the raw one)."""
    ref, cur = _pair(reference, current)
    return float(np.max(np.abs(np.cumsum(ref) / ref.sum() - np.cumsum(cur) / cur.sum())))


def ks_bin_tolerance(reference: Counts, current: Counts) -> float:
    """How far the binned KS can fall below the raw one: the largest single-bin mass."""
    ref, cur = _pair(reference, current)
    return float(max(np.max(ref / ref.sum()), np.max(cur / cur.sum())))


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    p_value: float
    dof: int


def chi_square(reference: Counts, current: Counts) -> ChiSquare:
    """Chi-square test of homogeneity on class counts (2 x classes; empty classes dropped).

    The same statistic and p-value as ``scipy.stats.chi2_contingency(correction=False)``,
    computed directly: the analysis runs it for every device and window. ``chdtrc`` is
    what ``stats.chi2.sf`` calls, without its argument handling (25x faster).
    """
    ref, cur = _pair(reference, current)
    keep = (ref + cur) > 0
    if keep.sum() < 2:
        return ChiSquare(0.0, 1.0, 0)
    table = np.vstack([ref[keep], cur[keep]])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    dof = int(keep.sum()) - 1
    return ChiSquare(statistic, float(special.chdtrc(dof, statistic)), dof)


def estimated_accuracy(confidence_counts: Counts, edges: npt.ArrayLike) -> float:
    """Expected accuracy from calibrated top-class confidence (the CBPE idea).

    With calibrated confidence c, P(correct) = c, so the mean confidence is the
    expected accuracy; from a histogram we use each bin's midpoint.
    """
    counts = _counts(confidence_counts)
    e = np.asarray(edges, dtype=np.float64)
    if e.size != counts.size + 1:
        raise ValueError("a histogram needs exactly one more edge than counts")
    if counts.sum() <= 0:
        raise ValueError("a histogram with no samples has no estimated accuracy")
    mids = np.clip((e[:-1] + e[1:]) / 2.0, 0.0, 1.0)
    return float(np.sum(counts * mids) / counts.sum())


def _size_factor(n: float, m: float) -> float:
    return 1.0 / n + 1.0 / m


@functools.lru_cache(maxsize=1024)
def chi2_quantile(q: float, dof: int) -> float:
    return float(stats.chi2.ppf(q, dof))


@functools.lru_cache(maxsize=256)
def ks_quantile(q: float) -> float:
    return float(stats.kstwobign.ppf(q))


def psi_alarm_level(n: float, m: float, bins: int, alpha: float) -> float:
    """PSI above which a window is drifted at false-alarm rate ``alpha`` (null quantile)."""
    if bins < 2:
        return math.inf
    return _size_factor(n, m) * chi2_quantile(1.0 - alpha, bins - 1)


def js_alarm_level(n: float, m: float, bins: int, alpha: float) -> float:
    """JS distance (base 2) at the same false-alarm rate: JSD ~ PSI / 8 nats for small shifts."""
    return math.sqrt(psi_alarm_level(n, m, bins, alpha) / (8.0 * math.log(2.0)))


def ks_alarm_level(n: float, m: float, alpha: float) -> float:
    """Asymptotic two-sample KS critical value (conservative for the binned statistic)."""
    return ks_quantile(1.0 - alpha) * math.sqrt(_size_factor(n, m))


def chi_square_alarm_level(dof: int, alpha: float) -> float:
    return math.inf if dof < 1 else chi2_quantile(1.0 - alpha, dof)


__all__ = [
    "ChiSquare",
    "chi2_quantile",
    "chi_square",
    "chi_square_alarm_level",
    "estimated_accuracy",
    "js_alarm_level",
    "js_distance",
    "ks_alarm_level",
    "ks_bin_tolerance",
    "ks_binned",
    "ks_quantile",
    "psi",
    "psi_alarm_level",
]
