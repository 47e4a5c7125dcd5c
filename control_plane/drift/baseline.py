"""Production baselines: what one camera looks like in one condition, and its own alarm levels.

A baseline is the merged counts of a camera's first ``baseline_windows`` windows in one
condition (day, dusk, night, IR, rain, or ``any`` for agents that send none) under a release,
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

Each feature also gets a level for runs of the latest windows merged (``judge_recent``),
fitted the same way on merged runs of the baseline's windows: a lasting change adds up
over windows that one window's level would let through.

``alpha`` follows from the target run length between false alarms: one per camera per
``false_alarm_days`` days over all its windows and features (Bonferroni over features;
cameras are handled by stating the target per camera, see docs/drift.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from protocols import ReferenceProfile

from . import class_mix, stats
from .region_features import min_count, region_counts
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


def busy_windows(profile: ReferenceProfile, cameras: list[dict[str, Any]], min_samples: int
                 ) -> int:
    """How many of these camera windows have ``min_samples`` crops on the profile's bins:
    the windows a baseline's crop features are learned from."""
    return sum(1 for c in cameras
               if (s := camera_summary(profile, c)) is not None and s.frames >= min_samples)


def feature_counts(profile: ReferenceProfile, summary: Summary) -> dict[str, FloatArray]:
    """Every feature's counts in ``summary``, classes included, by feature name."""
    pairs = features(profile, summary).items()
    out = {name: np.asarray(cur, np.float64) for name, (_, cur) in pairs}
    out["classes"] = np.asarray(summary.class_counts, np.float64)
    return out


def camera_counts(profile: ReferenceProfile, camera: dict[str, Any], min_samples: int
                  ) -> dict[str, FloatArray] | None:
    """Every drift feature of one camera window against a baseline: the crop features when
    it has ``min_samples`` crops on the profile's bins, and the region telemetry's
    (``region_features``) whatever its crops: a camera turned away from the animals'
    paths classifies few crops, and its scene's edges still say so. None: neither."""
    summary = camera_summary(profile, camera)
    out = {} if summary is None or summary.frames < min_samples else feature_counts(
        profile, summary)
    out |= region_counts(camera, list(profile.class_counts))
    return out or None


@dataclass(frozen=True)
class Level:
    """A feature's fitted null: normalized PSI ~ ``scale * chi2(dof)`` for one window, and
    ``recent_scale * chi2(recent_dof)`` for ``recent_windows`` consecutive windows merged
    (None: a baseline fitted before merged windows were judged)."""

    scale: float
    dof: float
    bins: int
    recent_scale: float | None = None
    recent_dof: float | None = None
    recent_windows: int = 0
    # ``class_mix.FEATURE`` only: its windows' dispersion, and how many latest windows it
    # pools (0: as many as given); it has no PSI level.
    dispersion: float | None = None
    pooled: int = 0

    def alarm(self, n: float, m: float, alpha: float, min_psi: float, *,
              recent: bool = False) -> float:
        """PSI level for a window (``recent``: merged latest windows) of ``m`` frames
        against a baseline of ``n``."""
        return max((1.0 / n + 1.0 / m) * self.factor(alpha, recent=recent), min_psi)

    def factor(self, alpha: float, *, recent: bool = False) -> float:
        """The level before the sample sizes: ``alarm`` is ``factor * (1/n + 1/m)``
        (at least ``min_psi``)."""
        scale, dof = self.scale, self.dof
        if recent and self.recent_scale is not None and self.recent_dof is not None:
            scale, dof = self.recent_scale, self.recent_dof
        return max(scale * _chi2_isf(alpha, dof), _chi2_isf(alpha, max(self.bins - 1, 1)))


@functools.lru_cache(maxsize=4096)
def _chi2_isf(alpha: float, dof: float) -> float:
    from scipy import stats as st

    return float(st.chi2.isf(alpha, dof))


@functools.lru_cache(maxsize=1024)
def _chi2_ppf(q: float, dof: int) -> float:
    from scipy import stats as st

    return float(st.chi2.ppf(q, dof))


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


MIN_REPLAYS = 8  # replays a level is fitted from: fewer say too little of the spread
# The level is a quantile far in the fitted tail (alpha ~ 1e-6), and the tail follows the
# replays' variance: estimated from a few replays it is often too small, and the level
# then far too calm (8 replays of an exact scaled chi-square: a third of the fits let
# windows through 100 times as often as alpha). The variance is taken at this upper
# confidence bound (chi-square with replays - 1 degrees of freedom): 3.2 times the
# estimate from 8 replays, 1.2 times from 240 (a level about 10 % higher there). None:
# the estimate itself (for comparisons).
VARIANCE_CONFIDENCE: float | None = 0.95


def _fit_level(z: FloatArray, bins: int) -> tuple[float, float] | None:
    """Scaled chi-square (scale, dof) by moments, at the variance's upper confidence bound;
    None with too few or flat replays."""
    z = z[np.isfinite(z)]
    if z.size < MIN_REPLAYS or float(np.var(z)) <= 0 or float(np.mean(z)) <= 0:
        return None
    mean, var = float(np.mean(z)), float(np.var(z, ddof=1))
    if VARIANCE_CONFIDENCE is not None:
        var *= (z.size - 1) / _chi2_ppf(1.0 - VARIANCE_CONFIDENCE, z.size - 1)
    return var / (2.0 * mean), max(2.0 * mean * mean / var, 0.5)


def _replays(mat: FloatArray, block: int, span: int, min_samples: int) -> FloatArray:
    """Normalized PSI of every run of ``span`` consecutive windows, merged, against the
    baseline without that run and ``block`` windows on each side of it."""
    total = mat.sum(axis=0)
    z = []
    for i in range(max(len(mat) - span + 1, 0)):
        lo, hi = max(0, i - block), min(len(mat), i + span + block)
        ref = total - mat[lo:hi].sum(axis=0)
        cur = mat[i:i + span].sum(axis=0)
        n, m = float(ref.sum()), float(cur.sum())
        if n <= 0 or m < min_samples:
            continue
        z.append(stats.psi(ref, cur) / (1.0 / n + 1.0 / m))
    return np.array(z, np.float64)


def learn(
    profile: ReferenceProfile,
    windows: list[dict[str, Any]],
    *,
    min_samples: int,
    block: int,
    recent: int = 1,
    mix_span: int = 0,
) -> Fit | None:
    """A baseline from one camera's windows in one condition (the camera dicts, each with
    ``window_minutes``), in time order; None when fewer than two judged windows.

    Each feature gets two levels: one for a single window, one for ``recent``
    consecutive windows merged (what ``judge_recent`` compares); the class mix its
    dispersion at ``recent`` and at ``mix_span`` windows merged (the runs it judges)."""
    rows: list[dict[str, FloatArray]] = []
    minutes: list[float] = []
    for camera in windows:
        counts = camera_counts(profile, camera, min_samples)
        if counts is None:
            continue
        rows.append(counts)
        minutes.append(float(camera.get("window_minutes") or 1.0))
    if len(rows) < 2:
        return None
    # A window without a feature (too few crops; a region field its agent did not send
    # yet) adds nothing to it, and its replays skip it.
    shapes = {name: cur.shape for r in rows for name, cur in r.items()}
    names = list(shapes)
    block = min(block, max((len(rows) - 1) // 8, 0))  # leave most windows in the reference
    levels: dict[str, Level] = {}
    notes: dict[str, str] = {}
    for name in names:
        mat = np.array([r.get(name, np.zeros(shapes[name])) for r in rows])
        if mat.sum() <= 0:
            continue  # never seen (no animal came by): nothing to compare with
        bins, least = int(mat.shape[1]), min_count(name, min_samples)
        replays = _replays(mat, block, 1, least)
        fitted = _fit_level(replays, bins)
        if fitted is None and np.isfinite(replays).sum() < MIN_REPLAYS:
            # Too few windows with enough samples to show how this camera's windows vary.
            # The independent-samples level instead would be several times too low for a
            # camera (its crops come a few animals at a time) and fire on its busy windows:
            # the feature is not judged against this baseline (its counts are kept).
            notes[name] = (f"no level: {replays.size} windows with {least} samples, "
                           f"{MIN_REPLAYS} needed to fit one")
            continue
        # Replays that never varied: any change is one, as for independent samples.
        scale, dof = fitted or (1.0, float(max(bins - 1, 1)))
        span = max(1, min(recent, len(rows) // 4))
        # Too few merged runs to fit: the bound for identical windows (the statistic of
        # ``span`` copies of a window is ``span`` times its own).
        r_scale, r_dof = _fit_level(_replays(mat, block, span, least), bins) or (
            scale * span, dof)
        levels[name] = Level(scale, dof, bins, r_scale, r_dof, span)
    total = {name: np.sum([r[name] for r in rows if name in r], axis=0) for name in names}
    total = {name: cur for name, cur in total.items() if name in levels or name in notes}
    mix = _mix(rows, list(profile.class_counts), (recent, mix_span))
    if mix is not None:
        levels[class_mix.FEATURE], total[class_mix.FEATURE] = mix
    if "confidence" not in total:
        return None  # no window with enough crops: nothing the model saw to compare with
    frames = int(total["confidence"].sum())
    return Fit(
        counts={k: v.tolist() for k, v in total.items()},
        levels=levels,
        windows=len(rows),
        frames=frames,
        window_minutes=float(np.median(minutes)),
        replayed=len(rows),
        notes=notes,
    )


def _mix(rows: list[dict[str, FloatArray]], labels: list[str], spans: tuple[int, int]
         ) -> tuple[Level, FloatArray] | None:
    """The class-mix feature of a baseline: its animals per animal class and the
    dispersion of its windows' counts, the larger at either run length (None: too few
    animals, or a model of one). The mix of a scene also wanders over an hour (which
    animals come by), which runs of the windows the test pools show and runs of a few
    windows do not."""
    keep = class_mix.animal_classes(labels)
    have = [r["regions.animals"][keep] for r in rows if "regions.animals" in r]
    if not have:
        return None
    mat = np.array(have, np.float64)
    # Pool no more windows than the baseline holds runs of to check its dispersion at.
    pooled = max(1, min(spans[1] or spans[0], len(have) // class_mix.MIN_RUNS))
    fits = [f for f in (class_mix.fit(mat, span) for span in (spans[0], pooled))
            if f is not None]
    if not fits:
        return None
    return (Level(1.0, 0.0, len(keep), dispersion=max(fits), pooled=pooled),
            mat.sum(axis=0))


@dataclass(frozen=True)
class Verdict:
    """One window against a baseline: drifted or not, and the feature that drove it."""

    drifted: bool
    feature: str | None
    statistic: float | None
    level: float | None
    ratio: float | None


def _driver(
    baseline_counts: dict[str, list[float]],
    levels: dict[str, Level],
    counts: dict[str, FloatArray],
    *,
    alpha: float,
    min_samples: int,
    min_psi: float,
    recent: bool,
) -> Verdict | None:
    """The feature with the largest statistic-to-level ratio, drifted or not, so a report
    always names the feature closest to its alarm with that feature's own level."""
    best: tuple[float, str, float, float] | None = None
    for name, cur in counts.items():
        ref = np.asarray(baseline_counts.get(name) or [], np.float64)
        if (name not in levels or ref.shape != cur.shape or ref.sum() <= 0
                or cur.sum() < min_count(name, min_samples)):
            continue
        level = levels[name].alarm(float(ref.sum()), float(cur.sum()), alpha, min_psi,
                                   recent=recent)
        value = stats.psi(ref, cur)
        ratio = value / level if level > 0 else math.inf
        if best is None or ratio > best[0]:
            best = (ratio, name, value, level)
    if best is None:
        return None
    ratio, name, value, level = best
    return Verdict(ratio > 1.0, name, value, level, ratio)


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
    """One camera window against its baseline (None: too few frames or other bins)."""
    counts = camera_counts(profile, camera, min_samples)
    if counts is None:
        return None
    return _driver(baseline_counts, levels, counts, alpha=alpha, min_samples=min_samples,
                   min_psi=min_psi, recent=False)


def judge_recent(
    profile: ReferenceProfile,
    baseline_counts: dict[str, list[float]],
    levels: dict[str, Level],
    cameras: list[dict[str, Any]],
    *,
    alpha: float,
    min_samples: int,
    min_psi: float,
) -> Verdict | None:
    """A camera's latest windows merged (those with ``min_samples`` frames each, at most
    as many as the level was fitted for) against its baseline, at the level fitted for
    merged windows (None: none judged).

    Why merged: a change that lasts shows in every window after it, and N windows hold N
    times the frames, so the level (fitted on merged runs of the baseline's own windows,
    serial correlation included) lets through smaller lasting changes than one window's."""
    merged: dict[str, FloatArray] = {}
    # The latest as many windows as the level was fitted for: more would be a larger
    # statistic than the level knows of (neighbouring windows are alike).
    span = max((lv.recent_windows for lv in levels.values()), default=0) or len(cameras)
    rows = [r for r in (camera_counts(profile, c, min_samples) for c in cameras)
            if r is not None][-span:]
    for row in rows:
        for name, cur in row.items():
            merged[name] = merged[name] + cur if name in merged else cur
    if not merged:
        return None
    return _driver(baseline_counts, levels, merged, alpha=alpha, min_samples=min_samples,
                   min_psi=min_psi, recent=True)


def judge_mix(
    profile: ReferenceProfile,
    baseline_counts: dict[str, list[float]],
    levels: dict[str, Level],
    cameras: list[dict[str, Any]],
    *,
    alpha: float,
) -> Verdict | None:
    """A camera's latest windows (oldest first) against its baseline's mix of animals
    (``class_mix``: a CUSUM over them at the level for ``alpha``). None: the baseline has
    no class-mix feature (learned before it, too few animals) or no window has region
    telemetry."""
    lv = levels.get(class_mix.FEATURE)
    ref = baseline_counts.get(class_mix.FEATURE)
    if lv is None or lv.dispersion is None or not ref:
        return None
    labels = list(profile.class_counts)
    counts = [a for a in (class_mix.animals(c, labels) for c in cameras) if a is not None]
    counts = counts[-lv.pooled:] if lv.pooled else counts
    if not counts or counts[0].size != len(ref):
        return None
    value = class_mix.statistic(np.asarray(ref, np.float64), lv.dispersion, counts)
    level = class_mix.level(alpha)
    return Verdict(value > level, class_mix.FEATURE, value, level, value / level)


def fit_json(fit: Fit) -> dict[str, Any]:
    """The stored form of a fit's levels."""
    out: dict[str, Any] = {}
    for k, v in fit.levels.items():
        out[k] = {"scale": v.scale, "dof": v.dof, "bins": v.bins,
                  "recent_scale": v.recent_scale, "recent_dof": v.recent_dof,
                  "recent_windows": v.recent_windows}
        if v.dispersion is not None:
            out[k] |= {"dispersion": v.dispersion, "pooled": v.pooled}
    return out


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


def levels_of(stored: dict[str, Any]) -> dict[str, Level]:
    """Levels from their stored form (a baseline stored before merged levels has none);
    levels parsed already (``learning.ActiveBaseline``) are taken as they are."""
    return {k: v if isinstance(v, Level) else
            Level(float(v["scale"]), float(v["dof"]), int(v["bins"]),
                  _optional(v.get("recent_scale")), _optional(v.get("recent_dof")),
                  int(v.get("recent_windows") or 0), _optional(v.get("dispersion")),
                  int(v.get("pooled") or 0))
            for k, v in stored.items()}


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
    "busy_windows",
    "camera_counts",
    "camera_key",
    "camera_summary",
    "feature_counts",
    "fit_json",
    "judge",
    "judge_mix",
    "judge_recent",
    "learn",
    "levels_of",
    "window_alpha",
    "window_minutes",
]
