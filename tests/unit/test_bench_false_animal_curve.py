"""The false-animal curve replays a track's crops through the agent's own tracker."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from false_animal_curve import counted_at

OTHER = frozenset({"other"})


def test_crops_below_the_confidence_abstain_and_one_above_it_counts_the_track() -> None:
    # A walker's part at night: "cat" at 0.4-0.57, never "other"; the crops that abstain
    # still confirm the track, so the one crop at or above the confidence counts it.
    crops = [("cat", 0.38), ("cat", 0.41), ("cat", 0.57), ("cat", 0.53), ("cat", 0.52)]
    assert counted_at(crops, OTHER, 0.5, 3)
    assert counted_at(crops, OTHER, 0.57, 3)
    assert not counted_at(crops, OTHER, 0.58, 3)


def test_a_cat_read_once_among_other_crops_is_outvoted() -> None:
    crops = [("other", 0.9), ("other", 0.9), ("cat", 0.95), ("other", 0.9), ("other", 0.9)]
    assert not counted_at(crops, OTHER, 0.5, 3)
    # Read so for as many frames as a track takes to be confirmed, it counts.
    crops = [("cat", 0.8)] * 3 + [("other", 0.9)] * 3
    assert counted_at(crops, OTHER, 0.8, 3) and not counted_at(crops, OTHER, 0.81, 3)
