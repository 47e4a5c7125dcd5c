"""Production baselines: what one camera looks like in one condition, and its own alarm levels.

A baseline is the merged counts of a camera's first ``baseline_windows`` windows in one
condition (day, dusk, night, IR, or ``any`` for agents that send none) under a release,
plus, per feature, the parameters of its alarm level. Pure: no store, no I/O.

Why levels come from the baseline's own windows: frames of one camera are strongly
correlated (an animal stays in view for many frames), so one window's histogram holds
far fewer independent values than frames, and the textbook null distribution of PSI,
``(1/n + 1/m) * chi2(bins - 1)``, is far too narrow for it. Each baseline window is
therefore replayed against the baseline without its neighbourhood (a block of windows
around it, so serial correlation cannot make the replay look calmer than the future),
and the normalized statistics ``psi / (1/n + 1/m)`` are fitted with a scaled chi-square
``c * chi2(d)`` by their mean and variance (Satterthwaite). A window's level is that
distribution's quantile at ``alpha``, never below the independent-frames level.

``alpha`` follows from the target run length between false alarms: one per camera per
``false_alarm_days`` days over all its windows and features (Bonferroni over features;
cameras are handled by stating the target per camera, see docs/drift.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from protocols import ReferenceProfile

from . import stats
from .summary import FloatArray, Summary, features

ANY_CONDITION = "any"  # windows of agents that send no condition


def camera_key(camera: dict[str, Any]) -> tuple[str, str]:
    """(camera id, condition) of one camera of a window."""
    return str(camera.get("camera_id")), str(camera.get("condition") or ANY_CONDITION)


def camera_summary(profile: ReferenceProfile, camera: dict[str, Any]) -> Summary | None:
    """One camera's counts of one window on the profile's bins (None: no frames, other bins)."""
    summary = Summary.empty(profile)
    if not summary.add_window({"cameras": [camera]}) or summary.frames == 0:
        return None
    summary.flush()
    return summary


def feature_counts(profile: ReferenceProfile, summary: Summary) -> dict[str, FloatArray]:
    """Every feature's counts in ``summary``, classes included, by feature name."""
    pairs = features(profile, summary).items()
    out = {name: np.asarray(cur, np.float64) for name, (_, cur) in pairs}
    out["classes"] = np.asarray(summary.class_counts, np.float64)
    return out


@dataclass(frozen=True)
class Level:
    """A feature's fitted null: normalized PSI ~ ``scale * chi2(dof)``."""

    scale: float
    dof: float
    bins: int

    def alarm(self, n: float, m: float, alpha: float, min_psi: float) -> float:
        """PSI level for a window of ``m`` frames against a baseline of ``n``."""
        size = 1.0 / n + 1.0 / m
        fitted = self.scale * _chi2_isf(alpha, self.dof)
        independent = _chi2_isf(alpha, max(self.bins - 1, 1))
        return max(size * max(fitted, independent), min_psi)


def _chi2_isf(alpha: float, dof: float) -> float:
    from scipy import stats as st

    return float(st.chi2.isf(alpha, dof))


@dataclass
class Fit:
    """A learned baseline, before it is stored."""

    counts: dict[str, list[float]]
    levels: dict[str, Level]
    windows: int
    frames: int
    window_minutes: float
    replayed: int = 0
    notes: dict[str, str] = field(default_factory=dict)


def window_alpha(false_alarm_days: float, window_minutes: float, features_count: int) -> float:
    """Per-window, per-feature false-alarm rate for one false alarm per camera per
    ``false_alarm_days`` (Bonferroni over features)."""
    windows = false_alarm_days * 24 * 60 / max(window_minutes, 1e-6)
    return 1.0 / (windows * max(features_count, 1))


def _fit_level(z: FloatArray, bins: int) -> Level:
    """Scaled chi-square by moments; with too few or flat replays, the independent level."""
    z = z[np.isfinite(z)]
    if z.size < 8 or float(np.var(z)) <= 0 or float(np.mean(z)) <= 0:
        return Level(1.0, float(max(bins - 1, 1)), bins)
    mean, var = float(np.mean(z)), float(np.var(z, ddof=1))
    return Level(scale=var / (2.0 * mean), dof=max(2.0 * mean * mean / var, 0.5), bins=bins)


def learn(
    profile: ReferenceProfile,
    windows: list[dict[str, Any]],
    *,
    min_samples: int,
    block: int,
) -> Fit | None:
    """A baseline from one camera's windows in one condition (the camera dicts, each with
    ``window_minutes``), in time order; None when fewer than two judged windows."""
    rows: list[dict[str, FloatArray]] = []
    minutes: list[float] = []
    for camera in windows:
        summary = camera_summary(profile, camera)
        if summary is None or summary.frames < min_samples:
            continue
        rows.append(feature_counts(profile, summary))
        minutes.append(float(camera.get("window_minutes") or 1.0))
    if len(rows) < 2:
        return None
    names = list(rows[0])
    block = min(block, max((len(rows) - 1) // 8, 0))  # leave most windows in the reference
    total = {name: np.sum([r[name] for r in rows], axis=0) for name in names}
    levels: dict[str, Level] = {}
    for name in names:
        mat = np.array([r[name] for r in rows])
        z = []
        for i in range(len(rows)):
            lo, hi = max(0, i - block), min(len(rows), i + block + 1)
            ref = total[name] - mat[lo:hi].sum(axis=0)
            cur = mat[i]
            n, m = float(ref.sum()), float(cur.sum())
            if n <= 0 or m < min_samples:
                continue
            z.append(stats.psi(ref, cur) / (1.0 / n + 1.0 / m))
        levels[name] = _fit_level(np.array(z, np.float64), int(mat.shape[1]))
    frames = int(total["confidence"].sum())
    return Fit(
        counts={k: v.tolist() for k, v in total.items()},
        levels=levels,
        windows=len(rows),
        frames=frames,
        window_minutes=float(np.median(minutes)),
        replayed=len(rows),
    )


@dataclass(frozen=True)
class Verdict:
    """One window against a baseline: drifted or not, and the feature that drove it."""

    drifted: bool
    feature: str | None
    statistic: float | None
    level: float | None
    ratio: float | None


def judge(
    profile: ReferenceProfile,
    baseline_counts: dict[str, list[float]],
    levels: dict[str, Level],
    camera: dict[str, Any],
    *,
    alpha: float,
    min_samples: int,
    min_psi: float,
) -> Verdict | None:
    """One camera window against its baseline (None: too few frames or other bins).

    The driver is the feature with the largest statistic-to-level ratio, drifted or not, so
    a report always names the feature closest to its alarm with that feature's own level.
    """
    summary = camera_summary(profile, camera)
    if summary is None or summary.frames < min_samples:
        return None
    best: tuple[float, str, float, float] | None = None
    for name, cur in feature_counts(profile, summary).items():
        ref = np.asarray(baseline_counts.get(name) or [], np.float64)
        if ref.shape != cur.shape or ref.sum() <= 0 or cur.sum() < min_samples:
            continue
        level = levels[name].alarm(float(ref.sum()), float(cur.sum()), alpha, min_psi)
        value = stats.psi(ref, cur)
        ratio = value / level if level > 0 else math.inf
        if best is None or ratio > best[0]:
            best = (ratio, name, value, level)
    if best is None:
        return None
    ratio, name, value, level = best
    return Verdict(ratio > 1.0, name, value, level, ratio)


def fit_json(fit: Fit) -> dict[str, Any]:
    """The stored form of a fit's levels."""
    return {k: {"scale": v.scale, "dof": v.dof, "bins": v.bins} for k, v in fit.levels.items()}


def levels_of(stored: dict[str, Any]) -> dict[str, Level]:
    return {k: Level(float(v["scale"]), float(v["dof"]), int(v["bins"])) for k, v in stored.items()}


def window_minutes(payload: dict[str, Any]) -> float:
    """A window's length in minutes from its JSON (1 when unreadable)."""
    try:
        start = datetime.fromisoformat(str(payload["window_start"]))
        end = datetime.fromisoformat(str(payload["window_end"]))
    except (KeyError, ValueError):
        return 1.0
    return max((end - start).total_seconds() / 60.0, 1e-3)


__all__ = [
    "ANY_CONDITION",
    "Fit",
    "Level",
    "Verdict",
    "camera_key",
    "camera_summary",
    "feature_counts",
    "fit_json",
    "judge",
    "learn",
    "levels_of",
    "window_alpha",
    "window_minutes",
]
