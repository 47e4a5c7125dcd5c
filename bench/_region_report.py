"""The region accuracy benchmark's report: the animal clips' table, the goals' lines,
the fragments of each agent track and the false animals on clips without animals, printed
as Markdown from the ``Run`` of each clip (``region_accuracy.py`` runs the clips, and
``_track_score.py`` does the arithmetic)."""

from __future__ import annotations

import argparse
from collections import Counter

from _track_score import (  # bench/ is on sys.path: scripts run from it
    MATCH_IOU,
    MIN_WIDTH,
    Run,
    count_error,
    match,
    paired_difference,
    pooled,
    pooled_count_error,
    rate_upper,
    share_interval,
    track_outcomes,
    tracks_per_animal,
)

from edge_agent.regions.boxes import iou

ORACLE = " oracle labels"  # a row's name ends so when the sidecar replaced the model


def animal_table(a: argparse.Namespace, done: list[tuple[str, Run]]) -> dict[str, list[Run]]:
    """The animal clips' table: a row per variant, its seeds pooled."""
    rows: dict[str, list[Run]] = {}
    for name, run in done:
        rows.setdefault(name, []).append(run)
    print(f"| clip ({len(a.seeds)} x {a.seconds:g} s, 10 fps) | animals >= {MIN_WIDTH:.0%} "
          "wide | found | per-track accuracy (found) [95 % interval] | (all) | vs first, "
          "points | count error per window (mean) | windows within 10 % | pooled count "
          "error | agent - truth | tracks per animal | false animals | s to run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first = pooled(next(iter(rows.values())))
    for name, runs in rows.items():
        sc = pooled(runs)
        low, high = share_interval(sc.right, sc.found)
        windows = Run(windows=[w for r in runs for w in r.windows])
        err, within, n = count_error(windows)
        pooled_err, bias = pooled_count_error(runs)
        false = sum(len(match(r)[1]) for r in runs)
        per_animal = [tracks_per_animal(r) for r in runs]
        animals, tracks = sum(p[0] for p in per_animal), sum(p[1] for p in per_animal)
        print(f"| {name} | {sc.tracks} | {sc.found} | {sc.accuracy:.1%} [{low:.1%}, "
              f"{high:.1%}] | {sc.strict:.1%} | {(sc.accuracy - first.accuracy) * 100:+.1f} | "
              f"{err:.1%} | {within:.0%} of {n} | {pooled_err:.1%} | {bias:+.1%} | "
              f"{tracks / max(animals, 1):.2f} ({tracks} on {animals}) | {false} | "
              f"{sum(r.seconds for r in runs):.0f} |")
    if len(a.seeds) > 1:
        print()
        for name, runs in rows.items():
            clips = ", ".join(f"seed {seed} {pooled_count_error([r])[0]:.1%}"
                              for seed, r in zip(a.seeds, runs, strict=True))
            print(f"- {name}: pooled count error per clip: {clips}")
    return rows


def summary(rows: dict[str, list[Run]], oracle_name: str) -> None:
    """The goals' lines for the first variant; the oracle row (``oracle_name``), if run,
    splits the count error between the tracker and the model."""
    name, runs = next(iter(rows.items()))
    sc = pooled(runs)
    low, _ = share_interval(sc.right, sc.found)
    err, within, n = count_error(Run(windows=[w for r in runs for w in r.windows]))
    pooled_err, _ = pooled_count_error(runs)
    print(f"\n- goal per-track accuracy, animals >= 10 % wide, >= 97 %: {name} "
          f"{sc.accuracy:.1%} of the tracks found ({sc.right} of {sc.found}; 95 % lower bound "
          f"{low:.1%}; found {sc.found} of {sc.tracks}), {sc.strict:.1%} of all")
    print(f"- goal counts per window within 10 %: {name} mean error {err:.1%}, {within:.0%} "
          f"of {n} windows within 10 %; pooled over windows {pooled_err:.1%}")
    oracle = rows.get(oracle_name)
    conditions = [r for n, r in rows.items() if not n.endswith(ORACLE)]
    if len(conditions) > 1:
        worst = max(abs(pooled(r).accuracy - sc.accuracy) for r in conditions) * 100
        print(f"- goal conditions within 2 points of {name}: worst {worst:.1f} points")
    if oracle is not None and oracle is not runs:
        tracker_err, tracker_bias = pooled_count_error(oracle)
        print(f"- where the count error comes from (pooled over windows): with every crop "
              f"read right (oracle) {tracker_err:.1%} ({tracker_bias:+.1%} agent - truth): "
              f"regions and tracker; the model's misread crops add the rest, "
              f"{pooled_err - tracker_err:+.1%} points")
    if any(r.whole for r in runs):
        print(f"\nwhole-frame classification of the same {name} clips, per track (vote of "
              f"the frames it was in view): {sc.whole_right / max(sc.tracks, 1):.1%} "
              f"({sc.whole_right} of {sc.tracks}) against regions {sc.strict:.1%} "
              f"({sc.right} of {sc.tracks})")


def paired(rows: dict[str, list[Run]], oracle: str = ORACLE, goal_points: float = 2.0
           ) -> None:
    """Each condition against the first row on the same animals: every variant films the
    same seeds, so the same animals walk the same paths with the same boxes, and a track
    is right or wrong in both. Per-track accuracy over every scored animal (not found is
    wrong), the pairs that disagree, the difference with its 95 % interval, and whether
    the interval shows the goal (within ``goal_points`` of the first row) or its miss.
    The rows whose name ends in ``oracle`` (the model replaced by the truth) get a table
    of their own against the first of them: what a condition loses there is the regions'
    and the tracker's."""
    model = {n: r for n, r in rows.items() if not n.endswith(oracle)}
    oracles = {n: r for n, r in rows.items() if n.endswith(oracle)}
    for table in (model, oracles):
        if len(table) > 1:
            _paired_table(table, goal_points)


def _paired_table(rows: dict[str, list[Run]], goal_points: float) -> None:
    (name, first), *rest = rows.items()
    reference = track_outcomes(first)
    print(f"\n| paired against {name}: the same animals | tracks | right: {name} / this | "
          f"right in {name} only | right here only | difference, points [95 %] | within "
          f"{goal_points:g} points |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for other, runs in rest:
        d = paired_difference(reference, track_outcomes(runs))
        verdict = ("shown" if d.low * 100 >= -goal_points else
                   "missed" if d.high * 100 < -goal_points else "not resolved")
        print(f"| {other} | {d.tracks} | {d.reference_right} / {d.right} | {d.lost} | "
              f"{d.gained} | {d.difference * 100:+.1f} [{d.low * 100:+.1f}, "
              f"{d.high * 100:+.1f}] | {verdict} |")


def fragments(done: list[tuple[str, Run]]) -> None:
    """Per clip, each agent animal track and the truth tracks it overlaps (IoU >=
    MATCH_IOU in some frame), with its first and last frame: a truth id under several
    agent tracks is one animal split; an agent track over several truth ids carried one
    animal's id onto another."""
    for name, run in done:
        print(f"\n{name}: agent track [frames] label -> truth ids (label, frames overlapped)")
        for aid, a in sorted(run.agent.items()):
            if not a.boxes:
                continue
            hits: Counter[int] = Counter()
            for tid, t in run.truth.items():
                hits[tid] = sum(1 for k, b in a.boxes.items()
                                if k in t.boxes and iou(b, t.boxes[k]) >= MATCH_IOU)
            cover = ", ".join(f"{tid} ({run.truth[tid].label}, {n})"
                              for tid, n in hits.most_common() if n)
            print(f"  {aid} [{min(a.boxes)}-{max(a.boxes)}] {a.label} -> {cover or 'none'}")


def false_animals(a: argparse.Namespace, done: list[tuple[str, Run]], fps: float) -> None:
    """False animals on the clips without animals, per condition and per camera-hour."""
    per: Counter[str] = Counter()
    hours = 0.0
    for condition, run in done:
        per[condition] += len(match(run)[1])
        hours += run.frames / fps / 3600
    false_total = sum(per.values())
    parts = ", ".join(f"{condition} {false}" for condition, false in per.items())
    print(f"\nfalse animals on {a.empty_seconds:g} s ({hours:.2f} camera-hours, {len(done)} "
          f"clips) without animals (distractors: walkers, balls, leaves, cloud shadows; "
          f"{parts}): {false_total}, "
          f"{false_total / hours:.1f} per camera-hour, 95 % upper bound "
          f"{rate_upper(false_total, hours):.1f} (goal <= 1: shown once the bound is; with "
          f"none seen that takes {rate_upper(0, 1.0):.1f} camera-hours)")
