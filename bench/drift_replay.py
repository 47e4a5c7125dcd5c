#!/usr/bin/env python3
"""Replay benchmark of drift alarms on real feature streams: false alarms per 1,000
camera-days and, for injected shifts, recall and median delay in windows, for several
methods side by side on the same windows.

    python bench/drift_replay.py --model OUT [--cameras 100] [--days 1] [--drift-cameras 20]

``OUT`` is a trainer out dir of a regions-mode model (``parkwatch train --arch lite0
--regions``). The windows are the agent's own summaries (``_drift_pool``): wide park
clips filmed from the model's held-out test photos, one continuous clip per pool camera
and variant, cut into 1-minute windows, computed once and cached (``--cache``).

A replayed camera-day is 1,440 1-minute windows: night (IR for half the cameras, which
have an illuminator) until 06:00, dusk until 07:00, day until 18:00 (on 30 % of days with
a rain spell of 1 to 3 hours), dusk until 19:00, night again. Each stretch is filled
with blocks of ``--block`` consecutive windows of that pool camera's clip of that
variant (a block bootstrap: serial correlation within blocks). The windows a baseline
learns from (warm-up days) come from the first half of each clip, the windows scored
from the second half, so no scored window is in its baseline. A baseline learns from
the distinct pool windows its warm-up days drew, once each, in time order: 8 per
condition with the default pool (16-window clips), not ``baseline_windows`` (240),
because a window repeated inside a baseline stays in the reference when its replay
leaves it out and makes the fitted level too calm. That is the bench's main limit: a
level for one false alarm per 30 days is extrapolated from 8 replays. A condition has a
baseline only when the warm-up days held ``baseline_windows`` windows of it, as the
control plane learns one (rain, 1 to 3 hours on 30 % of days, mostly has none after the
default 2 warm-up days: ``--warm-days`` gives more cameras one).

Methods (every one with the default ``[drift]`` settings):

* ``windows``: per camera x condition baseline, each window against its per-window
  level, K of the latest N windows (``alert_rule = "windows"``, the default), or the
  class-mix test of its latest ``mix_windows`` windows (``drift.class_mix``);
* ``windows`` also runs the hour check (``drift.hours``) on every condition without a
  baseline, its history the ``hour_history_days`` days before each scored day;
* ``plain``: ``windows``, the levels by the plain moment fit of the baseline's replays (as
  before their variance was taken at its upper confidence bound,
  ``baseline.VARIANCE_CONFIDENCE``);
* ``unfitted``: ``windows``, but a feature whose baseline has too few windows with
  ``min_samples`` crops to fit its level (``baseline.MIN_REPLAYS``) is judged at the level
  for independent samples, as before such features were left unjudged;
* ``before``: ``windows`` without the class-mix test (its baselines without the feature,
  so the others' ``alpha`` is that of one feature fewer): what drift judged before it;
* ``crops``: ``before`` without the region features and the hour check (the windows'
  region telemetry removed: what drift judged before them);
* ``light-only``: ``windows`` on the conditions an agent without rain tagging sends
  (rain windows tagged ``day``: rain is tested in daylight only), so rain is judged
  against the day baseline;
* ``recent``: the latest windows of a camera x condition merged (at most N, as many as
  the level was fitted for), against the level fitted for merged windows
  (``alert_rule = "merged"``, ``drift.baseline.judge_recent``);
* ``training``: today's method before baselines, the training profile and a per-window
  level (``drift.compare.window_drifted``), K of N;
* ``psi>0.1``, ``psi>0.25``: the training profile and a fixed PSI threshold, K of N.

Shifts start by day on a scored day: the camera's windows from then on come from the
pool's shifted clips. A shift is detected when the method alarms within 60 windows of
its start and no alarm ran in the N windows before it; the delay counts windows, the
first shifted window being 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _drift_methods as dm
import _drift_pool as dp
from region_accuracy import load_release

from control_plane.config.drift import DriftSettings

DAY = 24 * 60
HORIZON = 60
METHODS = ["windows", "plain", "unfitted", "before", "crops", "recent", "light-only", "training",
           "psi>0.1", "psi>0.25"]


def timeline(rng: np.random.Generator, days: int, night: str) -> list[str]:
    """The pool variant of every minute of ``days`` days."""
    out: list[str] = []
    for _ in range(days):
        day = [night] * DAY
        day[6 * 60:7 * 60] = ["dusk"] * 60
        day[7 * 60:18 * 60] = ["day"] * (11 * 60)
        day[18 * 60:19 * 60] = ["dusk"] * 60
        if rng.random() < 0.3:
            start = int(rng.integers(8 * 60, 14 * 60))
            length = int(rng.integers(60, 181))
            day[start:start + length] = ["rain"] * length
        out += day
    return out


class Replay:
    """Pool windows by (pool camera, variant), split into learning and scoring halves."""

    def __init__(self, pool: dp.Pool, profile: object, block: int) -> None:
        self.block = block
        self.raw = pool
        self.index: dict[tuple[str, str], list[int]] = {}
        flat: list[dict[str, object]] = []
        for cam, variants in pool.items():
            for variant, windows in variants.items():
                self.index[(cam, variant)] = list(range(len(flat), len(flat) + len(windows)))
                flat += windows
        self.flat = flat
        self.windows = dm.windows_of(profile, flat)  # type: ignore[arg-type]
        self.crops = self.windows.crops_only()  # what the judge saw before region features
        self.before = self.windows.without_mix()  # what it judged before the class mix
        self.unfitted = self.windows.with_unfitted()
        self.plain = self.windows.with_plain_fit()

    def draw(self, rng: np.random.Generator, cam: str, variants: list[str], learning: bool
             ) -> np.ndarray:
        """Pool indices for a run of minutes, block by block from each variant's clip."""
        out = np.empty(len(variants), np.intp)
        i = 0
        while i < len(variants):
            v = variants[i]
            idx = self.index[(cam, v)]
            half = idx[: len(idx) // 2] if learning else idx[len(idx) // 2:]
            if v in dp.SHIFTS:  # shifted clips are only ever scored: use all of them
                half = idx
            b = min(self.block, len(half))
            start = int(rng.integers(0, len(half) - b + 1))
            j = i
            while j < len(variants) and j - i < b and variants[j] == v:
                j += 1
            out[i:j] = half[start:start + (j - i)]
            i = j
        return out


def judge(rp: Replay, picks: np.ndarray, scored_from: int, train: dict[str, np.ndarray],
          s: DriftSettings, profile: object, methods: list[str]) -> dict[str, np.ndarray]:
    """Every method's alarm at every scored window of one camera (picks: pool indices in
    time order). Each condition's baseline learns from the distinct pool windows of the
    warm-up days in that condition, once each, in time order: a pool window repeated
    inside a baseline would stay in the reference when its replay leaves it out and
    make the fitted level too calm."""
    w = rp.windows.take(picks)
    each, recent = _baselines(rp.windows, picks, scored_from, w.conditions, s, profile)
    light = np.where(w.conditions == "rain", "day", w.conditions)
    out = {"recent": recent, "windows": each}
    if "plain" in methods:
        out["plain"] = _baselines(rp.plain, picks, scored_from, w.conditions, s, profile,
                                  False)[0]
    if "unfitted" in methods:
        out["unfitted"] = _baselines(rp.unfitted, picks, scored_from, w.conditions, s, profile,
                                     False)[0]
    if "before" in methods:
        out["before"] = _baselines(rp.before, picks, scored_from, w.conditions, s, profile,
                                   False)[0]
    if "crops" in methods:
        out["crops"] = _baselines(rp.crops, picks, scored_from, w.conditions, s, profile,
                                  False, False)[0]
    if "light-only" in methods:
        out["light-only"] = _baselines(rp.windows, picks, scored_from, light, s, profile,
                                       False)[0]
    for name, verdict in train.items():
        out[name] = dm.k_of_n(verdict[picks], s.alert_drifted_windows, s.alert_windows)
    return {name: a[scored_from:] for name, a in out.items() if name in methods}


def _baselines(windows: dm.Windows, picks: np.ndarray, scored_from: int,
               conditions: np.ndarray, s: DriftSettings, profile: object, merged: bool = True,
               hour: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """K of N single windows and merged windows against each window's camera x condition
    baseline, the conditions as given (``windows``: with or without region features). As
    in the control plane, a condition has a baseline once ``baseline_windows`` windows of
    it arrived (in the warm-up days): rain, a few hours on some days, often has none, and
    its windows are then never judged."""
    w = windows.take(picks)
    n, k = s.alert_windows, s.alert_drifted_windows
    each = np.zeros(len(picks), bool)
    recent = np.zeros(len(picks), bool)
    scored = np.arange(len(picks)) >= scored_from
    learning: set[str] = set()
    for cond in sorted(set(conditions.tolist())):
        warm = picks[:scored_from][conditions[:scored_from] == cond]
        if warm.size < s.baseline_windows:
            learning.add(cond)  # still learning, as the control plane: the hour check only
            continue
        distinct = np.array(list(dict.fromkeys(warm.tolist())), np.intp)
        base = dm.learn(profile, windows.take(distinct), s)  # type: ignore[arg-type]
        if base is None:
            continue
        mask = scored & (conditions == cond)
        mix = dm.exceed_mix(base, w, s, mask, list(profile.class_counts))  # type: ignore[attr-defined]
        each |= dm.k_of_n(dm.exceed_each(base, w, s) & mask, k, n) | mix
        if merged:
            recent |= dm.exceed_recent(base, w, s, mask) | mix
    if hour:
        alarms = dm.hour_alarms(conditions, scored_from, learning, s)
        each |= alarms
        recent |= alarms
    return each, recent


def camera(rp: Replay, rng: np.random.Generator, i: int, warm: int, days: int,
           shift: str | None = None) -> tuple[list[str], np.ndarray, int]:
    """One replayed camera: its variants, pool indices, and the shift's start (or -1)."""
    cams = sorted(rp.raw)
    cam = cams[i % len(cams)]
    night = "ir" if (i // len(cams)) % 2 else "night"
    variants = timeline(rng, warm + days, night)
    at = -1
    if shift is not None:
        at = warm * DAY + int(rng.integers(8 * 60, 16 * 60))
        variants = variants[:at] + [shift] * (HORIZON + 1)
    learn = rp.draw(rng, cam, variants[: warm * DAY], True)
    score = rp.draw(rng, cam, variants[warm * DAY:], False)
    return variants, np.concatenate([learn, score]), at


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dp.add_pool_args(ap)
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--days", type=int, default=1, help="scored days per camera")
    ap.add_argument("--warm-days", type=int, default=0,
                    help="days a baseline learns from (0: enough for dusk's baseline_windows)")
    ap.add_argument("--drift-cameras", type=int, default=20, help="per shift kind")
    ap.add_argument("--pool-cameras", type=int, default=2)
    ap.add_argument("--pool-windows", type=int, default=16, help="per pool camera and condition")
    ap.add_argument("--pool-shift-windows", type=int, default=6)
    ap.add_argument("--pool-windows-of", nargs="+", default=[], metavar="VARIANT=N",
                    help="windows of these variants' clips instead (e.g. day=240 dusk=240)")
    ap.add_argument("--segment", type=int, default=0,
                    help="compute clips longer than this many windows in parts, one worker "
                         "each, after 2 windows of warm-up (0: every clip in one pass)")
    ap.add_argument("--fps", type=float, default=1.0, help="frames analysed per second")
    ap.add_argument("--block", type=int, default=4, help="block bootstrap length, windows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="processes computing the pool")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS,
                    help="the methods to score (default: all)")
    a = ap.parse_args()
    try:
        _, manifest, _ = load_release(a.model)
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"error: {a.model}: {exc}; pass --model with a regions-mode trainer out dir")
    spec = dp.PoolSpec(a.pool_cameras, a.pool_windows, a.pool_shift_windows, 60.0, a.fps,
                       a.seed, _sizes(a.pool_windows_of), a.segment)
    t0 = time.perf_counter()
    pool = dp.build(spec, a.model, a.photos, a.cache, a.workers)
    print(f"pool: {a.pool_cameras} cameras x ({len(dp.CONDITIONS)} conditions x "
          f"{a.pool_windows} + {len(dp.SHIFTS)} shifts x {a.pool_shift_windows}) windows of "
          f"60 s at {a.fps:g} frames/s{''.join(f', {v} {n}' for v, n in spec.sizes)} "
          f"({time.perf_counter() - t0:.0f} s, cache {a.cache})")
    report(pool, manifest.reference_profile, a)


def _sizes(pairs: list[str]) -> tuple[tuple[str, int], ...]:
    """``VARIANT=N`` arguments, checked."""
    out = []
    for pair in pairs:
        variant, _, n = pair.partition("=")
        if variant not in (*dp.CONDITIONS, *dp.SHIFTS) or not n.isdigit() or int(n) < 2:
            sys.exit(f"error: --pool-windows-of {pair}: expected VARIANT=N with N >= 2 and "
                     f"VARIANT one of {', '.join((*dp.CONDITIONS, *dp.SHIFTS))}")
        out.append((variant, int(n)))
    return tuple(out)


def report(pool: dp.Pool, profile: object, a: argparse.Namespace) -> None:
    s = DriftSettings()
    rp = Replay(pool, profile, a.block)
    tags = {v: _share(rp, v) for v in (*dp.CONDITIONS, *dp.SHIFTS)}
    print("agent's condition tags per pool variant: " + "; ".join(
        f"{v} {t}" for v, t in tags.items()))
    train = dm.training_verdicts(profile, rp.flat, s)  # type: ignore[arg-type]
    rng = np.random.default_rng(a.seed)
    # dusk: 120 windows a day; the hour check: hour_min_days days of history
    warm = a.warm_days or max(s.hour_min_days, -(-s.baseline_windows // 120))
    t0 = time.perf_counter()
    false = dict.fromkeys(METHODS, 0)
    in_rain = dict.fromkeys(METHODS, 0)
    in_alarm = dict.fromkeys(METHODS, 0)
    by_light: dict[str, Counter[str]] = {m: Counter() for m in METHODS}
    scored: Counter[str] = Counter()
    rain_scored = rain_judged = 0
    for i in range(a.cameras):
        variants, picks, _ = camera(rp, rng, i, warm, a.days)
        light = np.array(variants[warm * DAY:])
        scored.update(light.tolist())
        rain = light == "rain"
        rain_scored += int(rain.sum())
        if variants[: warm * DAY].count("rain") >= s.baseline_windows:
            rain_judged += int(rain.sum())
        for name, alarm in judge(rp, picks, warm * DAY, train, s, profile,
                                 a.methods).items():
            false[name] += dm.episodes(alarm)
            starts = alarm & ~np.concatenate([[False], alarm[:-1]])
            in_rain[name] += int((starts & rain).sum())
            in_alarm[name] += int(alarm.sum())
            by_light[name].update(light[alarm].tolist())
    camera_days = a.cameras * a.days
    print(f"\nno drift: {a.cameras} cameras x {a.days} days = {camera_days} camera-days of "
          f"1-minute windows after {warm} warm-up days (baseline_windows "
          f"{s.baseline_windows}, baseline_block {s.baseline_block}, K {s.alert_drifted_windows}"
          f" of N {s.alert_windows}, false_alarm_days {s.false_alarm_days:g}; "
          f"{time.perf_counter() - t0:.0f} s)")
    print(f"rain: {rain_scored} scored windows, {rain_judged} of them on cameras with a rain "
          "baseline (the others: learning)")
    print(f"{'method':<10} {'false alarms':>13} {'per 1,000 camera-days':>22} "
          f"{'of them starting in rain':>25} {'windows in alarm':>17}")
    for name in a.methods:
        print(f"{name:<10} {false[name]:>13} {1000 * false[name] / camera_days:>22.1f} "
              f"{in_rain[name]:>25} {in_alarm[name] / (camera_days * DAY):>17.2%}")
    print("windows in alarm by the pool variant of the minute: " + "; ".join(
        f"{name} " + ", ".join(f"{v} {by_light[name][v] / scored[v]:.1%}" for v in scored)
        for name in a.methods if by_light[name]))
    shifts(rp, rng, warm, train, s, profile, a.drift_cameras, a.methods)


def _share(rp: Replay, variant: str) -> str:
    tags = rp.windows.conditions[[i for (_, v), idx in rp.index.items() if v == variant
                                  for i in idx]]
    values, counts = np.unique(tags, return_counts=True)
    return ",".join(f"{v} {c / tags.size:.0%}" for v, c in zip(values, counts, strict=True))


def shifts(rp: Replay, rng: np.random.Generator, warm: int, train: dict[str, np.ndarray],
           s: DriftSettings, profile: object, per_kind: int, methods: list[str]) -> None:
    print(f"\ninjected shifts ({per_kind} cameras each, by day): recall within {HORIZON} "
          f"windows / median delay in windows")
    print(f"{'shift':<11}" + "".join(f"{m:>16}" for m in methods))
    n = s.alert_windows
    near: list[tuple[str, str]] = []
    for shift in dp.SHIFTS:
        found: dict[str, list[int]] = {m: [] for m in methods}
        for i in range(per_kind):
            _, picks, at = camera(rp, rng, i, warm, 1, shift)
            for name, alarm in judge(rp, picks, warm * DAY, train, s, profile,
                                     methods).items():
                rel = at - warm * DAY
                after = np.flatnonzero(alarm[rel: rel + HORIZON])
                # An alarm already on when the shift starts is no detection of it.
                if after.size and not alarm[max(rel - n, 0): rel].any():
                    found[name].append(int(after[0]) + 1)
        # Its own generator: the methods' cameras stay those of runs without it.
        near.append((shift, _nearest(rp, np.random.default_rng(len(near)), warm, s, profile,
                                     per_kind, shift)))
        cells = []
        for name in methods:
            hits = found[name]
            med = f"{np.median(hits):.0f}" if hits else "-"
            cells.append(f"{len(hits) / per_kind:>8.0%} / {med:>3}")
        print(f"{shift:<11}" + "".join(f"{c:>16}" for c in cells))
    print("\nfeatures nearest their level, shifted windows against the camera's day baseline "
          "(median PSI / per-window level; share of windows over it):")
    for shift, text in near:
        print(f"  {shift:<11} {text}")


def _nearest(rp: Replay, rng: np.random.Generator, warm: int, s: DriftSettings,
             profile: object, cameras: int, shift: str) -> str:
    """The three features that come nearest their per-window level on the shifted windows,
    judged against each camera's day baseline (the shifts start by day): why a shift is
    or is not seen."""
    ratios: dict[str, list[np.ndarray]] = {}
    for i in range(min(cameras, 4)):
        _, picks, at = camera(rp, rng, i, warm, 1, shift)
        conditions = rp.windows.conditions[picks]
        day = picks[: warm * DAY][conditions[: warm * DAY] == "day"]
        distinct = np.array(list(dict.fromkeys(day.tolist())), np.intp)
        base = dm.learn(profile, rp.windows.take(distinct), s)  # type: ignore[arg-type]
        if base is None:
            continue
        moved = rp.windows.take(picks[at: at + HORIZON])
        for name, r in dm.feature_ratios(base, moved, s).items():
            ratios.setdefault(name, []).append(r)
    ranked = []
    for name, rs in ratios.items():
        r = np.concatenate(rs)
        r = r[np.isfinite(r)]
        if r.size:
            ranked.append((float(np.median(r)), float(np.mean(r > 1)), name))
    ranked.sort(reverse=True)
    return "; ".join(f"{name} {med:.2f} ({share:.0%})" for med, share, name in ranked[:3])


if __name__ == "__main__":
    main()
