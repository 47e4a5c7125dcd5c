"""The mix of animals a camera sees, pooled over its latest windows: a sequential test.

A minute of a park camera holds a handful of distinct animals (tracks, by voted label),
so no single window can tell "only cats now" from chance at a budget of one false alarm
per camera per ``false_alarm_days``: a day mix of 45 % cats shows four cats in a row once
in 25 minutes. Evidence has to add up over windows. This feature is a window-limited
CUSUM of a likelihood ratio on the distinct animals per class: for every run of the
camera × condition's latest windows (at most ``mix_windows``, ending at the newest), the
log-likelihood ratio of its animals under "one class now dominates" against the
baseline's mix, and the largest of them is the statistic.

* The alternative is a mixture over the classes: class ``c`` takes ``SHARE`` of the
  animals, the others the rest in their baseline proportions (one alternative per class
  whose baseline share is below ``SHARE``), weighted equally. A mixture of likelihood
  ratios is a likelihood ratio, so the level below holds whichever class takes over.
* The null is the baseline's *predictive*: the run's animals drawn from a mix the
  baseline's animals leave uncertain (Dirichlet-multinomial on its counts), so a small
  baseline, whose mix is known less well, needs more evidence, and the ratio has mean 1
  under it.
* Animals are not independent draws: one animal split into two tracks, or one that stays
  across a minute's boundary, counts twice. Counts are therefore divided by the
  baseline's own *dispersion* (effective animals): the variance of its windows' class
  counts over the multinomial's (Pearson chi-square per degree of freedom, of single
  windows and of runs of windows merged, at least 1), fitted when the baseline is
  learned (``fit``).
* Level: a CUSUM at threshold ``h`` runs at least ``e^h`` windows between false alarms
  when its ratio is a likelihood ratio (Lorden), and limiting it to the latest windows
  only lowers it. ``h = ln(windows in false_alarm_days x features)`` gives this feature
  the same share of the camera's budget as each PSI feature's ``alpha``
  (``baseline.window_alpha``).

Why not more power: at ~4 animals a minute, 45 % of them cats, a minute of only cats adds
about 2.4 to the log ratio, and ``h`` is about 13.5 for 1-minute windows and 17 features,
so a complete change is seen after 5 to 7 windows, never 3 (docs/drift.md). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln

from protocols.messages import REGION_WIDTH_EDGES

from .region_features import OTHER
from .summary import FloatArray

FEATURE = "regions.mix"
# The alternative's share of the dominating class: below 1, so an animal of another class
# (a cat misread as a dog) costs a bounded amount of evidence (ln(0.1 / 0.55) = -1.7).
SHARE = 0.9
PSEUDO_COUNT = 0.5  # per class, so a class the baseline never saw has a finite ratio
MIN_BASELINE_ANIMALS = 10  # fewer: the baseline's mix is not known well enough to judge
MIN_RUNS = 4  # merged runs of windows needed to fit their dispersion


def animal_classes(labels: Sequence[str]) -> list[int]:
    """Indices of the labels that are animals (``other`` is no animal: ``regions.other``
    judges it)."""
    return [i for i, k in enumerate(labels) if k != OTHER]


def animals(camera: dict[str, Any], labels: Sequence[str]) -> FloatArray | None:
    """One camera window's distinct animals per animal class (None: no region telemetry,
    so the window says nothing about the mix). As ``region_counts`` reads them, without
    its other features: this runs on every camera of every device's latest windows."""
    if len(camera.get("region_width_hist") or []) != len(REGION_WIDTH_EDGES) - 1:
        return None
    seen = camera.get("animals") or {}
    return np.array([float(seen.get(k, 0)) for k in labels if k != OTHER], np.float64)


def _pearson(mat: FloatArray) -> tuple[float, int]:
    """Pearson chi-square of each row's counts against the pooled mix, and its degrees of
    freedom (rows without counts add nothing)."""
    mat = mat[mat.sum(axis=1) > 0]
    total = mat.sum(axis=0)
    live = total > 0
    if mat.shape[0] < 2 or int(live.sum()) < 2:
        return 0.0, 0
    mat = mat[:, live]
    p = total[live] / total[live].sum()
    expected = mat.sum(axis=1, keepdims=True) * p
    return float(np.sum((mat - expected) ** 2 / expected)), (mat.shape[0] - 1) * (
        mat.shape[1] - 1)


def fit(mat: FloatArray, span: int) -> float | None:
    """The dispersion of a baseline's windows' animal counts (``mat``: windows x animal
    classes, in time order): the larger of single windows' and of runs of ``span``
    consecutive windows merged (serial correlation shows in the runs), at least 1.
    None: too few animals or classes to judge a mix by."""
    if mat.ndim != 2 or mat.shape[1] < 2 or float(mat.sum()) < MIN_BASELINE_ANIMALS:
        return None
    x2, dof = _pearson(mat)
    out = x2 / dof if dof else 1.0
    runs = mat.shape[0] // max(span, 1)
    if span > 1 and runs >= MIN_RUNS:
        merged = mat[: runs * span].reshape(runs, span, mat.shape[1]).sum(axis=1)
        x2, dof = _pearson(merged)
        if dof:
            out = max(out, x2 / dof)
    return max(out, 1.0)


def level(alpha: float) -> float:
    """The CUSUM threshold for a per-window, per-feature false-alarm rate ``alpha``
    (``baseline.window_alpha``): ``ln(1 / alpha)``, the log of the run length in windows
    that ``alpha`` stands for over all of a camera's features."""
    return -math.log(max(alpha, 1e-300))


def _alternatives(p: FloatArray) -> FloatArray:
    """One mix per class whose share is below ``SHARE``: that class at ``SHARE``, the
    others sharing the rest as in ``p`` (rows)."""
    out = []
    for c in range(p.size):
        if p[c] >= SHARE:
            continue
        q = p * (1.0 - SHARE) / (1.0 - p[c])
        q[c] = SHARE
        out.append(q)
    return np.array(out, np.float64).reshape(len(out), p.size)


def statistics(reference: FloatArray, dispersion: float, runs: FloatArray) -> FloatArray:
    """The log mixture likelihood ratio of each row of ``runs`` (animals per class of a
    run of windows merged) against ``reference`` (the baseline's animals per class), in
    effective animals (counts over ``dispersion``); 0 for a run without animals.

    The null is the baseline's predictive: the animals of the run drawn from the mix the
    baseline's animals leave uncertain (a Dirichlet-multinomial on the baseline's counts
    plus ``PSEUDO_COUNT``), so a baseline of few animals, whose mix is known less well,
    needs more evidence; under that null the ratio has mean 1, which the level needs."""
    ref = np.asarray(reference, np.float64) / dispersion
    y = np.asarray(runs, np.float64).reshape(-1, ref.size) / dispersion
    conc = ref + PSEUDO_COUNT
    alts = _alternatives(conc / conc.sum())
    if not alts.shape[0]:
        return np.zeros(y.shape[0])
    total = conc.sum()
    null = (gammaln(total) - gammaln(total + y.sum(axis=1))
            + np.sum(gammaln(conc + y) - gammaln(conc), axis=1))
    alt = y @ np.log(alts).T  # runs x alternatives
    top = alt.max(axis=1, keepdims=True)
    mixed = top[:, 0] + np.log(np.mean(np.exp(alt - top), axis=1))
    return np.asarray(mixed - null, np.float64)


def statistic(reference: FloatArray, dispersion: float, windows: Sequence[FloatArray]) -> float:
    """The largest of ``statistics`` over the runs of ``windows`` (animals per class,
    oldest first) that end at the newest; 0 when none is positive."""
    if not windows:
        return 0.0
    x = np.asarray(windows, np.float64).reshape(len(windows), -1)
    tail = np.cumsum(x[::-1], axis=0)[::-1]  # each run's counts: window t to the newest
    return max(float(statistics(reference, dispersion, tail).max()), 0.0)


__all__ = ["FEATURE", "SHARE", "animal_classes", "animals", "fit", "level", "statistic",
           "statistics"]
