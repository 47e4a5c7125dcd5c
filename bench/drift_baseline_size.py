#!/usr/bin/env python3
"""Does a baseline's alarm level hold on its camera's later windows? One pool clip of
``drift_replay``'s (the agent's own window summaries of a park clip filmed from held-out
photos) long enough for a production-sized baseline: the control plane's own
``baseline.learn`` learns from its first half, and the second half's windows, in order,
are judged against it, as a camera's next windows would be.

    python bench/drift_baseline_size.py --model OUT --seed 1 --camera 1 --variant night \\
        --windows 480

Printed, for the baseline of the whole first half and for baselines of ``--small``
consecutive windows of it (the replay bench's baselines: 8 distinct windows), each with
the level as now and with the plain moment fit (``baseline.VARIANCE_CONFIDENCE`` None,
before): the share of scored windows over their level on each feature, on any, and in
alarm by K of N. With the defaults the level is set for one false alarm per camera per
30 days: the share over it should be about 0.

The clip is computed in parts of ``--part`` windows, in order, each cached (``--cache``,
never the repository) as soon as done, so a run stopped half-way resumes, and
``--score-only`` scores the parts computed so far (a clip shorter than asked).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _drift_methods as dm
import _drift_pool as dp
from region_accuracy import load_release

from control_plane.config.drift import DriftSettings


def _part_path(cache: Path, p: dp.PoolSpec, sha: str, cam: int, variant: str, lo: int,
               hi: int) -> Path:
    return cache / f"drift_part_{p.key(sha)}_{cam}_{variant}_{p.length(variant)}_{lo}-{hi}.json"


def clip(p: dp.PoolSpec, cam: int, variant: str, model: Path, photos: Path, cache: Path,
         part: int, compute: bool) -> list[dict[str, Any]]:
    """The clip's windows from the start, part by part (the missing ones computed when
    ``compute``, each cached when done), up to the first part neither cached nor computed."""
    sha = load_release(model)[1].artifact.sha256
    n = p.length(variant)
    ranges = [(lo, min(lo + part, n)) for lo in range(0, n, part)]
    paths = [_part_path(cache, p, sha, cam, variant, lo, hi) for lo, hi in ranges]
    have = next((i for i, path in enumerate(paths) if not path.exists()), len(paths))
    started = time.perf_counter()
    if compute and have < len(ranges):
        for (lo, hi), path, windows in zip(
                ranges[have:], paths[have:],
                dp.parts(p, cam, variant, model, photos, cache, ranges[have:]), strict=True):
            path.write_text(json.dumps(windows))
            have += 1
            print(f"  windows {lo}-{hi} of {n} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    return [w for path in paths[:have] for w in json.loads(path.read_text())]


def score(profile: Any, learn: dm.Windows, scored: dm.Windows, s: DriftSettings
          ) -> dict[str, Any] | None:
    """Scored windows (in order) against a baseline learned from ``learn``: per feature
    the share over its level, over on any feature, in alarm by K of N, by the class mix."""
    base = dm.learn(profile, learn, s)
    if base is None:
        return None
    ratios = dm.feature_ratios(base, scored, s)
    over = np.zeros(len(scored.frames), bool)
    per: dict[str, float] = {}
    for name, r in ratios.items():
        hit = np.nan_to_num(r) > 1.0
        over |= hit
        if hit.any():
            per[name] = float(hit.mean())
    every = np.ones(len(over), bool)
    mix = dm.exceed_mix(base, scored, s, every, list(profile.class_counts))
    k_of_n = dm.k_of_n(over, s.alert_drifted_windows, s.alert_windows)
    return {"over": float(over.mean()), "k_of_n": float(k_of_n.mean()),
            "mix": float(mix.mean()), "per": per, "unfitted": len(base.fit.notes),
            "levels": len(base.fit.levels)}


def _line(label: str, r: dict[str, Any] | None) -> str:
    if r is None:
        return f"  {label:<34} no baseline"
    worst = sorted(r["per"].items(), key=lambda kv: -kv[1])[:4]
    return (f"  {label:<34} over {r['over']:6.1%}  K of N {r['k_of_n']:6.1%}  mix "
            f"{r['mix']:5.1%}  unfitted {r['unfitted']:>2} of {r['levels'] + r['unfitted']:<2}"
            f"  " + ", ".join(f"{k} {v:.1%}" for k, v in worst))


def report(profile: Any, raw: list[dict[str, Any]], small: int, s: DriftSettings) -> None:
    w = dm.windows_of(profile, raw)
    half = len(raw) // 2
    first, second = w.take(np.arange(half)), w.take(np.arange(half, 2 * half))
    print(f"\n{len(raw)} windows: baselines from the first {half}, {half} scored "
          f"(false_alarm_days {s.false_alarm_days:g}, K {s.alert_drifted_windows} of N "
          f"{s.alert_windows}, baseline_block {s.baseline_block})")
    for plain in (False, True):
        fit = "plain moment fit (before)" if plain else "variance bound (now)"
        print(f"level: {fit}")
        with dm.plain_fit(plain):
            print(_line(f"first {half} windows", score(profile, first, second, s)))
            rows = [score(profile, first.take(np.arange(lo, lo + small)), second, s)
                    for lo in range(0, half - small + 1, small)]
            done = [r for r in rows if r is not None]
            if not done:
                continue
            ks = np.array([r["k_of_n"] for r in done])
            print(f"  {len(done)} baselines of {small} consecutive windows: windows over on "
                  f"any feature, mean {np.mean([r['over'] for r in done]):.1%}; in alarm by K "
                  f"of N mean {ks.mean():.1%}, median {np.median(ks):.1%}, worst "
                  f"{ks.max():.1%}; {np.mean(ks > 0):.0%} of them ever in alarm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dp.add_pool_args(ap)
    ap.add_argument("--seed", type=int, default=1, help="the pool's seed (its scenes)")
    ap.add_argument("--camera", type=int, default=1, help="the pool camera")
    ap.add_argument("--variant", default="night", choices=(*dp.CONDITIONS, *dp.SHIFTS))
    ap.add_argument("--windows", type=int, default=480, help="the clip's length")
    ap.add_argument("--part", type=int, default=40, help="windows computed and cached at once")
    ap.add_argument("--small", type=int, default=8, help="windows of the small baselines")
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--score-only", action="store_true",
                    help="score the parts cached so far, compute nothing")
    a = ap.parse_args()
    if a.windows < 2 * a.small or a.part < 1:
        sys.exit(f"error: --windows {a.windows} --part {a.part}: need --windows of at least "
                 f"twice --small ({a.small}) and --part of at least 1")
    try:
        _, manifest, _ = load_release(a.model)
    except (OSError, ValueError, KeyError) as exc:
        sys.exit(f"error: {a.model}: {exc}; pass --model with a regions-mode trainer out dir")
    spec = dp.PoolSpec(max(2, a.camera + 1), 16, 6, 60.0, a.fps, a.seed, ((a.variant, a.windows),))
    (a.cache / "cutouts").mkdir(parents=True, exist_ok=True)
    raw = clip(spec, a.camera, a.variant, a.model, a.photos, a.cache, a.part, not a.score_only)
    print(f"seed {a.seed}, pool camera {a.camera}, {a.variant}: {len(raw)} of {a.windows} "
          f"windows of 60 s at {a.fps:g} frames/s")
    if len(raw) < 2 * a.small:
        sys.exit(f"error: {len(raw)} windows computed: run without --score-only first")
    report(manifest.reference_profile, raw, a.small, DriftSettings())


if __name__ == "__main__":
    main()
