#!/usr/bin/env python3
"""Replay benchmark of drift alarms: false alarms per 1,000 camera-days and, for
injected shifts, recall and median delay in windows, for four methods side by side.

    python bench/drift_replay.py [--cameras 100] [--days 1] [--drift-cameras 20] [--seed 0]

Windows are SYNTHETIC (``control_plane.drift.synthetic``'s feature model, not the
agent's summaries of real clips): 1-minute windows of one camera each, serially
correlated (a camera's scene drifts slowly, AR(1) over windows, and every window holds
10 distinct frames each counted 12 times, as a slow scene gives), with a day/dusk/night
cycle, each camera a little unlike the training data (a fixed offset per camera).

Methods, each with the same K = 3 of N = 5 rule on a camera's windows:

* ``baseline``: the control plane's default: per camera × condition production baseline
  learned from the camera's first ``baseline_windows`` windows in that condition, levels
  fitted from those windows (``drift/baseline.py``) for one false alarm per camera per
  30 days;
* ``training``: today's method before baselines: the training profile, per-window level
  ``(1/n + 1/m) chi2(bins - 1)`` at alpha 0.001 and ``min_psi`` 0.02;
* ``psi>0.1`` and ``psi>0.25``: the training profile and a fixed PSI threshold.

Shifts are injected by day, after the baselines exist: camera moved (embedding and
contrast move), blur (sharpness falls), IR stuck on (saturation near 0: the agent then
tags the window ``ir``, a condition with no baseline), a new class mix, a new kind of
animal (confidence falls, embedding spreads). A shift is detected when the method
alarms within 60 windows of its start; the delay is counted in windows.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control_plane.config.drift import DriftSettings
from control_plane.drift import baseline as bl
from control_plane.drift import stats, synthetic
from protocols.features import bin_index

REF = synthetic.profile()
DISTINCT, REPEAT = 10, 12
K, N = 3, 5
WINDOWS_PER_DAY = 24 * 60
HORIZON = 60
STATS = ["brightness", "contrast", "sharpness", "saturation"]
MEAN = {"brightness": 130.0, "contrast": 50.0, "sharpness": 3.0, "saturation": 0.4}
SD = {"brightness": 20.0, "contrast": 10.0, "sharpness": 0.5, "saturation": 0.08}
# Mean shift of each input statistic (in SDs) by condition: light, not drift.
CONDITION_SHIFT = {"day": 0.0, "dusk": 1.0, "night": 2.0}
SHIFTS = ["moved", "blur", "ir_stuck", "class_mix", "new_object"]


def condition_at(minute: int) -> str:
    hour = (minute % WINDOWS_PER_DAY) / 60
    if 7 <= hour < 18:
        return "day"
    if 6 <= hour < 7 or 18 <= hour < 19:
        return "dusk"
    return "night"


@dataclass
class Stream:
    """One camera's windows: per feature a (windows x bins) count matrix; conditions."""

    counts: dict[str, np.ndarray]
    conditions: list[str]


def _frames(rng: np.random.Generator, offset: np.ndarray, light: np.ndarray,
            latent: np.ndarray, shift: np.ndarray, kind: str | None) -> dict[str, np.ndarray]:
    """The DISTINCT frames of every window: (windows, DISTINCT) arrays."""
    w, n = light.size, DISTINCT
    col = lambda a: a[:, None]  # noqa: E731
    v: dict[str, np.ndarray] = {}
    for i, s in enumerate(STATS):
        mu = MEAN[s] + SD[s] * (offset[i] - col(light) + 0.3 * col(latent))
        v[s] = rng.normal(mu, SD[s], (w, n))
    v["embedding.0"] = rng.normal(offset[4] + 0.3 * col(latent), 1.0, (w, n))
    v["embedding.1"] = rng.normal(0.0, 1.0, (w, n))
    a = np.maximum(5.0 - 1.0 * col(light), 1.0)
    v["confidence"] = 1 / 3 + (2 / 3) * rng.beta(np.broadcast_to(a, (w, n)), 1.5)
    v["classes"] = rng.choice(3, size=(w, n), p=[0.3, 0.4, 0.3])
    on = col(shift)
    if kind == "moved":
        v["embedding.0"] = v["embedding.0"] + 1.5 * on
        v["contrast"] = v["contrast"] - 1.0 * SD["contrast"] * on
    elif kind == "blur":
        v["sharpness"] = v["sharpness"] - 2.0 * SD["sharpness"] * on
    elif kind == "ir_stuck":
        v["saturation"] = np.where(on, rng.normal(0.05, 0.02, (w, n)), v["saturation"])
    elif kind == "class_mix":
        v["classes"] = np.where(on, rng.choice(3, size=(w, n), p=[0.05, 0.15, 0.8]),
                                v["classes"])
    elif kind == "new_object":
        v["confidence"] = np.where(on, 1 / 3 + (2 / 3) * rng.beta(1.5, 1.5, (w, n)),
                                   v["confidence"])
        v["embedding.1"] = np.where(on, rng.normal(0.0, 2.0, (w, n)), v["embedding.1"])
    return v


def _binned(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Per-window counts, binned as agents bin them (``protocols.features.bin_index``)."""
    bins = len(edges) - 1
    idx = bin_index(values.ravel(), edges).reshape(values.shape)
    rows = np.arange(values.shape[0])[:, None] * bins
    flat = np.bincount((rows + idx).ravel(), minlength=values.shape[0] * bins)
    return flat.reshape(values.shape[0], bins).astype(np.float64) * REPEAT


def stream(rng: np.random.Generator, windows: int, shift: str | None = None,
           shift_at: int = 0) -> Stream:
    offset = rng.normal(0.0, 0.6, 5)  # this camera unlike the training stills
    rho = 0.95
    noise = rng.normal(size=windows) * np.sqrt(1 - rho * rho)
    latent = np.zeros(windows)
    for w in range(1, windows):
        latent[w] = rho * latent[w - 1] + noise[w]
    conditions = [condition_at(w) for w in range(windows)]
    light = np.array([CONDITION_SHIFT[c] for c in conditions])
    on = np.zeros(windows, bool)
    if shift is not None:
        on[shift_at:] = True
    v = _frames(rng, offset, light, latent, on, shift)
    if shift == "ir_stuck":  # the agent's rule: saturation below 0.15 is IR
        conditions = ["ir" if o else c for c, o in zip(conditions, on, strict=True)]
    counts = {"confidence": _binned(v["confidence"], REF.confidence.edges)}
    counts |= {f"input.{s}": _binned(v[s], REF.input_stats[s].edges) for s in STATS}
    counts |= {f"embedding.{i}": _binned(v[f"embedding.{i}"], h.edges)
               for i, h in enumerate(REF.embedding_hists)}
    counts["classes"] = _binned(v["classes"].astype(np.float64), [0.0, 1.0, 2.0, 3.0])
    return Stream(counts, conditions)


def _psi_rows(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """PSI of each row of ``cur`` against ``ref``, as ``stats.psi``."""
    pc = stats.PSI_PSEUDO_COUNT
    p = (ref + pc) / (ref.sum() + pc * ref.size)
    q = (cur + pc) / (cur.sum(axis=1, keepdims=True) + pc * cur.shape[1])
    return np.asarray(np.sum((q - p) * np.log(q / p), axis=1))


def training_counts() -> dict[str, np.ndarray]:
    out = {"confidence": np.array(REF.confidence.counts)}
    out |= {f"input.{s}": np.array(REF.input_stats[s].counts) for s in STATS}
    out |= {f"embedding.{i}": np.array(h.counts) for i, h in enumerate(REF.embedding_hists)}
    out["classes"] = np.array([REF.class_counts[lb] for lb in synthetic.LABELS])
    return out


def exceed_training(s: Stream, fixed: float | None) -> np.ndarray:
    ref = training_counts()
    hit = np.zeros(len(s.conditions), bool)
    for name, cur in s.counts.items():
        r = ref[name]
        psi = _psi_rows(r, cur)
        if fixed is not None:
            hit |= psi > fixed
        else:
            m, n = cur.sum(axis=1), r.sum()
            chi2q = stats.psi_alarm_level(1.0, 1.0, r.size, 0.001) / 2.0
            hit |= psi > np.maximum((1 / n + 1 / m) * chi2q, 0.02)
    return hit


def exceed_baseline(s: Stream, learn: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Exceedances, and which windows were judged (a baseline existed)."""
    hit = np.zeros(len(s.conditions), bool)
    judged = np.zeros(len(s.conditions), bool)
    conds = np.array(s.conditions)
    for cond in sorted(set(s.conditions)):
        idx = np.flatnonzero(conds == cond)
        if idx.size <= learn:
            continue
        learn_idx, test_idx = idx[:learn], idx[learn:]
        levels = _fit(s, learn_idx, block)
        alpha = bl.window_alpha(30, 1.0, len(levels))
        judged[test_idx] = True
        for name, lv in levels.items():
            ref = s.counts[name][learn_idx].sum(axis=0)
            cur = s.counts[name][test_idx]
            psi = _psi_rows(ref, cur)
            m, n = cur.sum(axis=1), ref.sum()
            one = lv.alarm(n, 1.0, alpha, 0.0) / (1 / n + 1.0)  # the level per unit size
            level = np.maximum((1 / n + 1 / m) * one, 0.02)
            hit[test_idx] |= psi > level
    return hit, judged


def _fit(s: Stream, learn_idx: np.ndarray, block: int) -> dict[str, bl.Level]:
    """The control plane's fit, through its own code (``bl.learn``) on window JSON."""
    cams = []
    for w in learn_idx:
        c = s.counts
        cams.append({
            "camera_id": "gate",
            "confidence_hist": c["confidence"][w].tolist(),
            "input_hists": {st: c[f"input.{st}"][w].tolist() for st in STATS},
            "embedding_hists": [c["embedding.0"][w].tolist(), c["embedding.1"][w].tolist()],
            "class_counts": dict(zip(synthetic.LABELS, c["classes"][w].tolist(), strict=True)),
        })
    fit = bl.learn(REF, cams, min_samples=30, block=block)
    assert fit is not None
    return fit.levels


def alarms(hit: np.ndarray) -> np.ndarray:
    """Windows where K of the last N exceed (the device-level rule)."""
    run = np.convolve(hit.astype(int), np.ones(N, int))[: hit.size]
    return np.asarray(run >= K)


def episodes(alarm: np.ndarray) -> int:
    return int(np.sum(alarm[1:] & ~alarm[:-1]) + (1 if alarm.size and alarm[0] else 0))


METHODS = ["baseline", "training", "psi>0.1", "psi>0.25"]


def judge_all(s: Stream, learn: int, block: int) -> dict[str, np.ndarray]:
    base, judged = exceed_baseline(s, learn, block)
    return {"baseline": alarms(base) & judged, "training": alarms(exceed_training(s, None)),
            "psi>0.1": alarms(exceed_training(s, 0.1)),
            "psi>0.25": alarms(exceed_training(s, 0.25))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--drift-cameras", type=int, default=20, help="per shift kind")
    ap.add_argument("--seed", type=int, default=0)
    defaults = DriftSettings()
    ap.add_argument("--learn", type=int, default=defaults.baseline_windows,
                    help="[drift] baseline_windows (default: the default setting)")
    ap.add_argument("--block", type=int, default=defaults.baseline_block,
                    help="[drift] baseline_block (default: the default setting)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    # Learning needs each condition's first windows: warm-up days, then the days scored.
    warm = WINDOWS_PER_DAY * max(1, -(-args.learn // 120))  # dusk: 120 windows a day
    windows = int(warm + args.days * WINDOWS_PER_DAY)
    false = dict.fromkeys(METHODS, 0)
    alarmed = dict.fromkeys(METHODS, 0)
    for _ in range(args.cameras):
        s = stream(rng, windows)
        for name, alarm in judge_all(s, args.learn, args.block).items():
            false[name] += episodes(alarm[warm:])
            alarmed[name] += int(alarm[warm:].sum())
    camera_days = args.cameras * args.days
    print(f"no drift: {args.cameras} cameras x {args.days:g} days = {camera_days:g} "
          f"camera-days of 1-minute windows (after {warm // WINDOWS_PER_DAY} warm-up days; "
          f"baseline_windows {args.learn}, baseline_block {args.block})")
    print(f"{'method':<10} {'false alarms':>13} {'per 1,000 camera-days':>22} "
          f"{'windows in alarm':>17}")
    scored = args.cameras * (windows - warm)
    for name in METHODS:
        print(f"{name:<10} {false[name]:>13} {1000 * false[name] / camera_days:>22.1f} "
              f"{alarmed[name] / scored:>17.1%}")
    print()
    print(f"injected shifts ({args.drift_cameras} cameras each, by day): recall within "
          f"{HORIZON} windows / median delay in windows")
    print(f"{'shift':<11}" + "".join(f"{m:>18}" for m in METHODS))
    for shift in SHIFTS:
        found: dict[str, list[int]] = {m: [] for m in METHODS}
        for _ in range(args.drift_cameras):
            at = warm + int(rng.integers(8 * 60, 16 * 60))  # after warm-up, daytime
            s = stream(rng, at + HORIZON + 1, shift, at)
            for name, alarm in judge_all(s, args.learn, args.block).items():
                already = alarm[at - N: at].any()  # an alarm running before the shift
                after = np.flatnonzero(alarm[at: at + HORIZON])
                # An alarm already on when the shift starts is no detection of it.
                if after.size and not already:
                    found[name].append(int(after[0]) + 1)
        cells = []
        for name in METHODS:
            hits = found[name]
            med = f"{np.median(hits):.0f}" if hits else "-"
            cells.append(f"{len(hits) / args.drift_cameras:>11.0%} / {med:>4}")
        print(f"{shift:<11}" + "".join(f"{c:>18}" for c in cells))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
