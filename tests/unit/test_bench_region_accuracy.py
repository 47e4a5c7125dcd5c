"""The region accuracy benchmark's scoring: matching agent tracks to the truth, counts."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _track_score import (
    AgentTrack,
    Run,
    Truth,
    count_error,
    match,
    paired_difference,
    pooled,
    pooled_count_error,
    rate_upper,
    score_tracks,
    share_interval,
    track_outcomes,
)


def _run() -> Run:
    run = Run()
    # Truth: a dog 100 px wide (of 640) for 10 frames, a cat 40 px wide (too small to score).
    run.truth[1] = Truth("dog", {k: (100.0 + k, 100.0, 200.0 + k, 160.0) for k in range(10)},
                         [100 / 640] * 10)
    run.truth[2] = Truth("cat", {k: (400.0, 300.0, 440.0, 330.0) for k in range(10)},
                         [40 / 640] * 10)
    # The agent: the dog (called a dog), a track on the cat, and one on nothing.
    run.agent[7] = AgentTrack("dog", {k: (102.0 + k, 101.0, 201.0 + k, 161.0)
                                      for k in range(2, 10)})
    run.agent[8] = AgentTrack("dog", {k: (401.0, 300.0, 441.0, 330.0) for k in range(5)})
    run.agent[9] = AgentTrack("cat", {k: (10.0, 400.0, 60.0, 450.0) for k in range(6)})
    run.whole[1] = Counter({"cat": 3.0, "dog": 1.0})
    return run


def test_tracks_match_by_overlap_and_false_animals_match_nothing() -> None:
    matched, false = match(_run())
    assert matched == {1: 7, 2: 8}
    assert false == [9]


def test_only_wide_animals_are_scored_and_whole_frame_votes_beside() -> None:
    score = score_tracks(_run())
    assert (score.tracks, score.found, score.right, score.whole_right) == (1, 1, 1, 0)
    assert score.accuracy == 1.0 and score.strict == 1.0
    wrong = _run()
    wrong.agent[7].label = "cat"
    assert score_tracks(wrong).accuracy == 0.0


def test_count_error_per_window() -> None:
    run = Run()
    run.windows = [(Counter(dog=2), Counter(dog=2)), (Counter(dog=1), Counter(dog=2, cat=2)),
                   (Counter(cat=1), Counter())]  # no animal in truth: not scored
    mean, within, n = count_error(run)
    assert n == 2 and within == 0.5 and abs(mean - 0.375) < 1e-9


def test_pooled_counts_weigh_windows_by_their_animals() -> None:
    a, b = Run(), Run()
    a.windows = [(Counter(dog=2), Counter(dog=2)), (Counter(dog=1), Counter(dog=2, cat=2))]
    b.windows = [(Counter(cat=1), Counter())]  # an extra animal where there was none
    err, bias = pooled_count_error([a, b])
    assert abs(err - 4 / 6) < 1e-9 and abs(bias - (4 - 6) / 6) < 1e-9
    assert pooled([_run(), _run()]).right == 2


def test_intervals_say_how_much_the_tracks_and_hours_resolve() -> None:
    low, high = share_interval(100, 100)
    assert 0.96 < low < 0.97 and high == 1.0  # 100 of 100 does not yet show 97 %
    assert share_interval(300, 300)[0] > 0.98
    assert abs(rate_upper(0, 1.0) - 2.9957) < 1e-3  # the rule of three
    assert rate_upper(0, 4.0) < 1.0


def test_the_oracle_reads_each_region_from_the_truth() -> None:
    from types import SimpleNamespace

    import numpy as np
    from region_accuracy import OracleLabels

    def obj(kind: str, label: str, box: tuple[float, float, float, float]) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, label=label, box=box, visible_fraction=1.0)

    runtime = SimpleNamespace(manifest=SimpleNamespace(background_labels=["other"]),
                              release_id="r", labels=["cat", "dog", "other"])
    analyzer = SimpleNamespace(boxes=[])
    oracle = OracleLabels(runtime, analyzer)  # type: ignore[arg-type]
    oracle.objects = [obj("animal", "dog", (100, 100, 60, 40)),  # x, y, w, h
                      obj("animal", "cat", (300, 100, 40, 40)),
                      obj("distractor", "person", (500, 50, 40, 120))]
    analyzer.boxes = [
        (90.0, 90.0, 170.0, 150.0),  # the whole dog
        (300.0, 100.0, 321.0, 140.0),  # a bit more than half of the cat
        (300.0, 100.0, 310.0, 140.0),  # a quarter of it: no animal
        (495.0, 45.0, 545.0, 175.0),  # the person
    ]
    result = oracle.classify_crops(np.zeros((4, 8, 8, 3), np.uint8))
    assert result.tops == [1, 0, 2, 2]
    assert result.probs.shape == (4, 3) and result.confidences == [1.0] * 4


def test_the_track_set_counts_what_per_track_accuracy_scores() -> None:
    """``--tracks`` plans clips from the sidecar alone: its count of scored animals is
    the one ``score_tracks`` finds in the rendered frames' truth."""
    from dataclasses import replace

    from region_accuracy import scored_tracks

    from trainer.synth import Scene, SceneSpec, Schedule

    spec = SceneSpec(width=320, height=240, seconds=24, fps=5, seed=3, noise=False,
                     schedule=Schedule(empty_share=0.1, animals_per_minute=12))
    s = Scene(spec)
    run = Run()
    for k in range(s.frame_count):
        for o in s.render(k).objects:
            if o.kind == "animal":
                x, y, w, h = o.box
                truth = run.truth.setdefault(o.track_id, Truth(o.label))
                truth.boxes[k] = (x, y, x + w, y + h)
                truth.widths.append(w / spec.width)
    planned = scored_tracks(s)
    assert planned == score_tracks(run).tracks
    assert planned >= 1 and len(run.truth) > 1
    empty = Scene(replace(spec, schedule=Schedule(empty_share=1.0, animals_per_minute=0)))
    assert scored_tracks(empty) == 0


def test_tracks_per_animal_counts_each_agent_track_on_the_animal_it_follows_most() -> None:
    from _track_score import tracks_per_animal

    run = _run()
    assert tracks_per_animal(run) == (1, 1)  # the dog, one track (the cat is too small)
    # The dog lost and found again under a new id: two tracks on one animal.
    run.agent[10] = AgentTrack("dog", {k: (100.0 + k, 100.0, 200.0 + k, 160.0)
                                       for k in range(0, 2)})
    assert tracks_per_animal(run) == (1, 2)


def test_paired_difference_pairs_each_animal_with_itself() -> None:
    clean = {(0, 1): True, (0, 2): True, (1, 1): False, (1, 5): True}
    night = {(1, 5): False, (0, 2): True, (0, 1): False, (1, 1): True}  # another order
    d = paired_difference(clean, night)
    assert (d.tracks, d.reference_right, d.right, d.lost, d.gained) == (4, 3, 2, 2, 1)
    assert abs(d.difference + 0.25) < 1e-9 and d.low < -0.25 < d.high
    assert d.low >= -1.0 and d.high <= 1.0


def test_paired_interval_keeps_its_width_when_no_pair_disagrees() -> None:
    same = {(0, k): True for k in range(120)}
    d = paired_difference(same, dict(same))
    # 120 of 120 right under both: the difference is 0, but only shown within 3.1 points.
    assert d.difference == 0.0 and -0.032 < d.low < -0.030 and 0.030 < d.high < 0.032
    worse = {(0, k): k >= 30 for k in range(120)}  # 30 animals lost, none gained
    d = paired_difference(same, worse)
    assert abs(d.difference + 0.25) < 1e-9 and d.high < -0.02  # a miss the interval shows


def test_paired_difference_refuses_other_animals() -> None:
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference({(0, 1): True}, {(0, 2): True})


def test_track_outcomes_count_an_animal_not_found_as_wrong() -> None:
    found, missed = _run(), _run()
    del missed.agent[7]
    assert track_outcomes([found, missed]) == {(0, 1): True, (1, 1): False}


def test_conditions_film_the_same_animals_on_the_same_paths() -> None:
    """What the paired table rests on: every variant of a seed's clip is the same cast,
    boxes and visibility frame by frame, whatever the light or weather."""
    import argparse

    from region_accuracy import animal_jobs

    from trainer.synth import Scene, SceneSpec, Schedule

    a = argparse.Namespace(variants=["clean", "night", "ir", "rain", "blur", "jpeg"],
                           seeds=[3, 4], seconds=20.0, split=False, split_beside=False)
    jobs = [j for _, j in animal_jobs(a)]
    assert {(j.seed, j.seconds) for j in jobs} == {(3, 20.0), (4, 20.0)}
    rows = []
    for condition in ("day", "night", "ir", "rain"):
        s = Scene(SceneSpec(width=320, height=240, seconds=20, fps=5, seed=3,
                            conditions=(condition,),
                            schedule=Schedule(empty_share=0.1, animals_per_minute=12)))
        rows.append([s.rows(k) for k in range(s.frame_count)])
    assert any(r for r in rows[0]) and all(r == rows[0] for r in rows[1:])


def test_a_second_model_reads_every_clip_right_after_the_first() -> None:
    """``--compare``: the same clips, the two models alternating through the run, a row
    each (the paired table then compares them on the same animals)."""
    import argparse

    from region_accuracy import animal_jobs

    a = argparse.Namespace(variants=["clean", "night"], seeds=[3, 4], seconds=20.0,
                           split=False, split_beside=False, compare=Path("/m/b"))
    jobs = animal_jobs(a)
    assert [(n, j.seed, j.compare) for n, j in jobs[:4]] == [
        ("clean", 3, False), ("clean, /m/b", 3, True), ("clean", 4, False),
        ("clean, /m/b", 4, True)]
    assert {n for n, _ in jobs} == {"clean", "clean, /m/b", "night", "night, /m/b"}
    # Whole-frame classification stays the first model's, on its clean row only.
    assert [n for n, j in jobs if j.whole_frame] == ["clean", "clean"]


def test_hours_without_animals_are_clips_of_their_own_parks() -> None:
    import argparse

    from region_accuracy import EMPTY_CLIP_SECONDS, empty_jobs

    a = argparse.Namespace(empty_seconds=5 * 2.5 * EMPTY_CLIP_SECONDS, seeds=[20],
                           split=False, split_beside=False)
    jobs = empty_jobs(a)
    assert len(jobs) == 15 and len({j.seed for _, j in jobs}) == 15
    assert abs(sum(j.seconds for _, j in jobs) - a.empty_seconds) < 1e-6
    assert max(j.seconds for _, j in jobs) <= EMPTY_CLIP_SECONDS
    assert {c for c, _ in jobs} == {"day", "dusk", "night", "ir", "rain"}


def test_every_condition_has_an_oracle_row_paired_with_the_clean_oracle(
        capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from _region_report import paired
    from region_accuracy import VARIANTS, animal_jobs

    a = argparse.Namespace(variants=["clean", "night", "oracle", "night-oracle"], seeds=[3],
                           seconds=20.0, split=False, split_beside=False)
    jobs = {name: j for name, j in animal_jobs(a)}
    assert (jobs["night, oracle labels"].condition, jobs["night, oracle labels"].oracle) == (
        "night", True)
    assert not jobs["night"].oracle and jobs["clean, oracle labels"].oracle
    assert set(VARIANTS) >= {"rain-oracle", "ir-oracle", "blur-oracle", "jpeg-oracle"}
    run = _run()
    paired({name: [run] for name in jobs})
    out = capsys.readouterr().out
    assert "paired against clean:" in out and "paired against clean, oracle labels:" in out
    assert "| night, oracle labels |" in out.split("paired against clean, oracle")[1]


def test_a_window_counts_an_animal_once_a_third_of_it_is_in_view() -> None:
    run = Run()
    seen: set[int] = set()
    seen_truth: Counter[str] = Counter()
    run.see_animal(0, 7, "cat", (10, 20, 64, 48), 640, 0.2, seen, seen_truth)  # peeks in
    assert seen == set() and run.truth[7].boxes[0] == (10, 20, 74, 68)
    run.see_animal(1, 7, "cat", (12, 20, 64, 48), 640, 0.5, seen, seen_truth)
    run.see_animal(2, 7, "cat", (14, 20, 64, 48), 640, 0.9, seen, seen_truth)
    assert seen == {7} and seen_truth == Counter(cat=1)
    assert run.truth[7].widths == [0.1, 0.1, 0.1] and len(run.truth[7].boxes) == 3
