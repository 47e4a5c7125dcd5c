"""The region accuracy benchmark's count error by cause."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _count_causes import Causes, count_causes, off_windows
from _track_score import AgentTrack, Run, Truth


def _box(x: float, w: float = 100.0) -> tuple[float, float, float, float]:
    return (x, 100.0, x + w, 160.0)


def test_each_animal_too_many_or_too_few_has_one_cause() -> None:
    run = Run(frames=20, window_frames=10)
    run.truth[1] = Truth("dog", {k: _box(100) for k in range(20)})
    run.truth[2] = Truth("cat", {k: (110.0, 110.0, 140.0, 140.0) for k in range(10)})
    run.truth[3] = Truth("dog", {k: _box(400) for k in range(10, 20)})
    run.agent[7] = AgentTrack("dog", {k: _box(102) for k in range(20)})  # dog 1, cat 2 in it
    run.agent[8] = AgentTrack("dog", {k: _box(98) for k in range(12, 20)})  # dog 1 again
    run.agent[9] = AgentTrack("cat", {k: _box(600) for k in range(3)})  # nothing, ever
    # Cat 2's own track for a while, still counted after it left: coasting into window 2.
    run.agent[11] = AgentTrack("cat", {k: (110.0, 110.0, 140.0, 140.0) for k in range(13)})
    run.agent[12] = AgentTrack("dog", {**{k: _box(101) for k in range(5)},  # dog 1, then 3
                                       **{k: _box(401) for k in range(14, 19)}})
    run.window_ids = [({7, 9}, {1, 2}), ({7, 8, 11}, {1, 3})]
    c = count_causes(run)
    # Window 1: 2 - 2 = false 1 - merged 1 (cat 2 only inside the dog's track);
    # window 2: 3 - 2 = split 1 + stale 1 - missed 1 (dog 3 has no track there).
    assert c == Causes(truth=4, agent=5, split=1, stale=1, false=1, partial=0, merged=1,
                       missed=1, carried=1)
    assert c.agent - c.truth == c.split + c.stale + c.false + c.partial - c.merged - c.missed


def test_an_animal_the_truth_does_not_count_yet_is_partial() -> None:
    run = Run(frames=10, window_frames=10)
    run.truth[1] = Truth("dog", {k: _box(0) for k in range(10)})
    run.agent[5] = AgentTrack("dog", {k: _box(0) for k in range(10)})
    run.window_ids = [({5}, set())]  # never a third in view
    assert count_causes(run) == Causes(truth=0, agent=1, partial=1)


def test_only_windows_whose_count_is_off_are_listed_with_each_tracks_animal() -> None:
    run = Run(frames=20, window_frames=10)
    run.truth[1] = Truth("dog", {k: _box(100) for k in range(20)})
    run.truth[2] = Truth("cat", {k: _box(300) for k in range(10, 20)})
    run.agent[7] = AgentTrack("dog", {k: _box(102) for k in range(20)})
    run.agent[8] = AgentTrack("dog", {k: _box(98) for k in range(3)})  # dog 1 again
    run.agent[9] = AgentTrack("cat", {k: _box(600) for k in range(3)})  # on nothing
    run.window_ids = [({7, 8, 9}, {1}), ({7}, {1, 2})]
    assert off_windows(run) == [
        "  window 0 (frames 0-9): truth [1], counted 7->1 8->1 9->-",
        "  window 1 (frames 10-19): truth [1, 2], counted 7->1"]
    run.window_ids = [({7}, {1}), ({7, 8}, {1, 2})]  # right in number: not listed
    assert off_windows(run) == []
