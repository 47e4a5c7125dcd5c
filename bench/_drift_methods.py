"""The drift methods ``drift_replay.py`` scores, side by side on the same replayed windows.

Windows are the agent's own ``CameraWindow`` JSON (``_drift_pool``); each is turned once
into per-feature counts on the release's bins (the control plane's ``feature_counts``).
The baseline methods fit their levels through the control plane's own code
(``drift.baseline.learn``) on the very windows a camera's baseline would be learned from,
and judge as ``drift.baseline.judge`` and ``drift.verdicts`` do, vectorised over windows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from control_plane.config.drift import DriftSettings
from control_plane.drift import baseline as bl
from control_plane.drift import class_mix, compare, hours, stats
from control_plane.drift.region_features import min_count, without_regions
from protocols import ReferenceProfile

FloatArray = np.ndarray


@dataclass
class Windows:
    """Windows in time order: per feature a (windows x bins) count matrix, the agent's
    condition of each, its frames (crops), and its JSON (what a baseline learns from)."""

    counts: dict[str, FloatArray]
    conditions: np.ndarray
    frames: np.ndarray
    raw: list[dict[str, Any]]
    mix: bool = True  # judged on the class mix too (``class_mix``)
    # A feature whose baseline has too few windows to fit its level is judged at the level
    # for independent samples (as before such features were left unjudged).
    unfitted: bool = False
    # Levels by the plain moment fit of the replays (before the variance's confidence bound).
    plain: bool = False

    def take(self, idx: np.ndarray) -> Windows:
        return Windows({k: v[idx] for k, v in self.counts.items()}, self.conditions[idx],
                       self.frames[idx], [self.raw[i] for i in idx], self.mix, self.unfitted,
                       self.plain)

    def with_unfitted(self) -> Windows:
        """The same windows judged as before unfitted features were left out."""
        return Windows(self.counts, self.conditions, self.frames, self.raw, self.mix, True)

    def with_plain_fit(self) -> Windows:
        """The same windows judged at levels of the plain moment fit (before)."""
        return Windows(self.counts, self.conditions, self.frames, self.raw, self.mix,
                       self.unfitted, True)

    def without_mix(self) -> Windows:
        """The same windows judged without the class-mix test (before it)."""
        return Windows(self.counts, self.conditions, self.frames, self.raw, False)

    def crops_only(self) -> Windows:
        """The same windows as a judge without region features sees them (before)."""
        keep = {k: v for k, v in self.counts.items() if not k.startswith(REGION_PREFIXES)}
        return Windows(keep, self.conditions, self.frames, [without_regions(c) for c in self.raw],
                       False)


REGION_PREFIXES = ("regions.", "scene.")


def windows_of(profile: ReferenceProfile, raw: list[dict[str, Any]]) -> Windows:
    names: list[str] | None = None
    rows: list[dict[str, FloatArray]] = []
    for cam in raw:
        counts = bl.camera_counts(profile, cam, 1)
        rows.append(counts or {})
        if counts and (names is None or len(counts) > len(names)):
            names = list(counts)
    assert names is not None, "no window with frames in the pool"
    shapes = {n: next(r[n].shape for r in rows if n in r) for n in names}
    counts = {n: np.array([r.get(n, np.zeros(shapes[n])) for r in rows]) for n in names}
    conditions = np.array([str(c.get("condition") or bl.ANY_CONDITION) for c in raw])
    return Windows(counts, conditions, counts["confidence"].sum(axis=1), raw)


def _psi_rows(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """PSI of each row of ``cur`` against ``ref``, as ``stats.psi``."""
    pc = stats.PSI_PSEUDO_COUNT
    p = (ref + pc) / (ref.sum() + pc * ref.size)
    q = (cur + pc) / (cur.sum(axis=1, keepdims=True) + pc * cur.shape[1])
    return np.asarray(np.sum((q - p) * np.log(q / p), axis=1))


# -- training reference: per pool window, once -------------------------------------------------
def training_verdicts(profile: ReferenceProfile, raw: list[dict[str, Any]],
                      settings: DriftSettings) -> dict[str, np.ndarray]:
    """Per window: today's per-window verdict against the training profile
    (``compare.window_drifted``) and fixed PSI thresholds 0.1 and 0.25 (any feature)."""
    ref = _training_counts(profile)
    w = windows_of(profile, raw)
    judged = w.frames >= settings.min_samples
    today = np.array([bool(compare.window_drifted(profile, {"cameras": [c]}, settings))
                      for c in raw])
    worst = np.zeros(len(raw))
    for name, cur in w.counts.items():
        if name not in ref:
            continue  # a region feature: training profiles hold no region telemetry
        ok = cur.sum(axis=1) > 0
        psi = np.zeros(len(raw))
        psi[ok] = _psi_rows(ref[name], cur[ok])
        worst = np.maximum(worst, psi)
    return {"training": today & judged, "psi>0.1": (worst > 0.1) & judged,
            "psi>0.25": (worst > 0.25) & judged}


def _training_counts(profile: ReferenceProfile) -> dict[str, FloatArray]:
    out = {"confidence": np.array(profile.confidence.counts, np.float64)}
    out |= {f"input.{k}": np.array(h.counts, np.float64) for k, h in profile.input_stats.items()}
    out |= {f"embedding.{i}": np.array(h.counts, np.float64)
            for i, h in enumerate(profile.embedding_hists)}
    out["classes"] = np.array(list(profile.class_counts.values()), np.float64)
    return out


# -- production baselines -----------------------------------------------------------------------
@dataclass
class Baseline:
    fit: bl.Fit
    alpha: float

    def levels(self, name: str, m: FloatArray, min_psi: float, recent: bool) -> FloatArray:
        """The PSI level of windows of ``m`` frames (vectorised ``Level.alarm``)."""
        lv = self.fit.levels[name]
        n = float(np.sum(self.fit.counts[name]))
        one = lv.alarm(n, 1.0, self.alpha, 0.0, recent=recent) / (1.0 / n + 1.0)
        level: FloatArray = np.maximum((1.0 / n + 1.0 / np.maximum(m, 1e-9)) * one, min_psi)
        return level


@contextmanager
def plain_fit(on: bool) -> Iterator[None]:
    """Levels by the plain moment fit (``baseline.VARIANCE_CONFIDENCE`` None) while on."""
    kept = bl.VARIANCE_CONFIDENCE
    if on:
        bl.VARIANCE_CONFIDENCE = None
    try:
        yield
    finally:
        bl.VARIANCE_CONFIDENCE = kept


def learn(profile: ReferenceProfile, w: Windows, settings: DriftSettings) -> Baseline | None:
    with plain_fit(w.plain):
        fit = bl.learn(profile, [{**c, "window_minutes": 1.0} for c in w.raw],
                       min_samples=settings.min_samples, block=settings.baseline_block,
                       recent=settings.alert_windows, mix_span=settings.mix_windows)
    if fit is None:
        return None
    if w.unfitted:
        for name in fit.notes:
            bins = len(fit.counts[name])
            fit.levels[name] = bl.Level(1.0, float(max(bins - 1, 1)), bins)
    # A feature the windows were stripped of is not one the judge knows of (Bonferroni).
    fit.levels = {k: v for k, v in fit.levels.items() if k in w.counts
                  or (k == class_mix.FEATURE and w.mix and "regions.animals" in w.counts)}
    alpha = bl.window_alpha(settings.false_alarm_days, 1.0, len(fit.levels))
    return Baseline(fit, alpha)


def exceed_each(base: Baseline, w: Windows, settings: DriftSettings) -> np.ndarray:
    """Per window: does any feature exceed its per-window level (``baseline.judge``)."""
    return _exceed(base, w.counts, len(w.frames), settings, merged=False)


def exceed_recent(base: Baseline, w: Windows, settings: DriftSettings, mask: np.ndarray
                  ) -> np.ndarray:
    """Per window t: the windows among the latest N (t included) that ``mask`` keeps (this
    camera x condition, judged), merged, against the baseline's level for N merged
    windows (``baseline.judge_recent``)."""
    n = max((lv.recent_windows for lv in base.fit.levels.values()), default=0)
    if n == 0:  # no feature fitted (every one unfitted): nothing is judged
        return np.zeros(len(mask), bool)
    keep = mask.astype(np.float64)
    kernel = np.ones(n)
    # Latest n windows by time, not by judged windows: close enough for a bench.
    merged = {name: np.stack([np.convolve(cur[:, b] * keep, kernel)[: len(keep)]
                              for b in range(cur.shape[1])], axis=1)
              for name, cur in w.counts.items() if name in base.fit.levels}
    return _exceed(base, merged, len(w.frames), settings, merged=True)


def _exceed(base: Baseline, counts: dict[str, FloatArray], rows: int,
            settings: DriftSettings, merged: bool) -> np.ndarray:
    """Per row of ``counts`` (windows, or merged windows): any feature past its level."""
    hit = np.zeros(rows, bool)
    for name, cur in counts.items():
        if name not in base.fit.levels:
            continue
        ref = np.asarray(base.fit.counts[name], np.float64)
        m = cur.sum(axis=1)
        ok = m >= min_count(name, settings.min_samples)
        if not ok.any():
            continue
        psi = _psi_rows(ref, cur[ok])
        hit[ok] |= psi > base.levels(name, m[ok], settings.default_threshold.min_psi, merged)
    return hit


def exceed_mix(base: Baseline, w: Windows, settings: DriftSettings, mask: np.ndarray,
               labels: list[str]) -> np.ndarray:
    """Per window t: the class-mix test (``baseline.judge_mix``) of the windows ``mask``
    keeps among the latest ``mix_windows`` (t included), where the camera x condition is
    among the latest N (as the control plane lists it), vectorised over windows: each run
    ending at t is the difference of two cumulative sums."""
    lv = base.fit.levels.get(class_mix.FEATURE)
    if lv is None or lv.dispersion is None or "regions.animals" not in w.counts:
        return np.zeros(len(mask), bool)
    ref = np.asarray(base.fit.counts[class_mix.FEATURE], np.float64)
    x = w.counts["regions.animals"][:, class_mix.animal_classes(labels)] * mask[:, None]
    cum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    t = np.arange(len(mask))
    best = np.zeros(len(mask))
    for back in range(min(lv.pooled or settings.mix_windows, settings.mix_windows)):
        run = cum[t + 1] - cum[np.maximum(t - back, 0)]
        best = np.maximum(best, class_mix.statistics(ref, lv.dispersion, run))
    shown = np.convolve(mask.astype(int), np.ones(settings.alert_windows, int))[: len(mask)]
    return (best > class_mix.level(base.alpha)) & (shown > 0)


def k_of_n(hit: np.ndarray, k: int, n: int) -> np.ndarray:
    """Windows where K of the latest N exceed (the device-level rule)."""
    run = np.convolve(hit.astype(int), np.ones(n, int))[: hit.size]
    return np.asarray(run >= k)


def episodes(alarm: np.ndarray) -> int:
    """Separate alarms: runs of consecutive alarmed windows."""
    return int(np.sum(alarm[1:] & ~alarm[:-1]) + (1 if alarm.size and alarm[0] else 0))


# -- the hour check: a light never shown at this hour -------------------------------------------
MINUTES_A_DAY = 24 * 60
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def hour_alarms(conditions: np.ndarray, scored_from: int, learning: set[str],
                settings: DriftSettings) -> np.ndarray:
    """Per window (one a minute, from midnight of day 0): the hour check's verdict
    (``drift.hour_history.apply``) for windows of a condition without a baseline. Each
    scored day's history is the ``hour_history_days`` days before it, as in the control
    plane; a window counts when its light is new at its hour, and the camera is drifted
    when more of its latest N windows count than the history's level."""
    n, k = settings.alert_windows, settings.alert_drifted_windows
    new = np.zeros(len(conditions), bool)
    levels = np.full(len(conditions), n, float)
    for day in range(scored_from // MINUTES_A_DAY, -(-len(conditions) // MINUTES_A_DAY)):
        lo = max(0, day - settings.hour_history_days) * MINUTES_A_DAY
        hi = day * MINUTES_A_DAY
        cells = Counter(zip(np.arange(lo, hi) // 60, conditions[lo:hi].tolist(), strict=True))
        history = hours.History.of(
            (_EPOCH + timedelta(hours=int(h)), str(c), w) for (h, c), w in cells.items())
        level = hours.level(history, n, k, settings.hour_min_days)
        for t in range(max(hi, scored_from), min(hi + MINUTES_A_DAY, len(conditions))):
            cond = str(conditions[t])
            hour = (t % MINUTES_A_DAY) // 60
            if cond in learning and history.days_at(hour) >= settings.hour_min_days:
                new[t] = history.novel(hour, hours.light(cond))
            levels[t] = level
    run = np.convolve(new.astype(int), np.ones(n, int))[: new.size]
    return np.asarray(run > levels)


def feature_ratios(base: Baseline, w: Windows, settings: DriftSettings) -> dict[str, FloatArray]:
    """Per feature and window: PSI over its per-window level (NaN: not judged), what
    ``baseline.judge`` ranks drivers by: how near each feature came to alarming."""
    out: dict[str, FloatArray] = {}
    for name, cur in w.counts.items():
        if name not in base.fit.levels:
            continue
        ref = np.asarray(base.fit.counts[name], np.float64)
        m = cur.sum(axis=1)
        ok = m >= min_count(name, settings.min_samples)
        ratio = np.full(len(m), np.nan)
        if ok.any():
            level = base.levels(name, m[ok], settings.default_threshold.min_psi, False)
            ratio[ok] = _psi_rows(ref, cur[ok]) / level
        out[name] = ratio
    return out
