"""The track error bench's attribution of the agent's crops to the animals they hold."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from track_errors import Crop, _holder, _vote


def test_a_region_belongs_to_the_animal_it_holds_most_of() -> None:
    dog, cat = (100.0, 100.0, 200.0, 160.0), (190.0, 100.0, 260.0, 150.0)
    assert _holder((90.0, 90.0, 210.0, 170.0), [(1, dog), (2, cat)]) == (1, 1.0, False)
    # Both whole inside: the pair's region, its first animal and the group flag.
    assert _holder((90.0, 90.0, 270.0, 170.0), [(1, dog), (2, cat)])[::2] == (1, True)
    # Under half of any animal: nobody's.
    assert _holder((0.0, 0.0, 140.0, 120.0), [(1, dog), (2, cat)]) == (None, 0.0, False)


def _crop(p: list[float], flipped: list[float] | None = None) -> Crop:
    box = (0.0, 0.0, 1.0, 1.0)
    probs = np.array(p, np.float32)
    return Crop(probs, np.array(flipped or p, np.float32), 1.0, 1.0, False, False, 0.1,
                box, box, 1.0, probs)


def test_the_vote_weighs_confident_crops_and_lets_unsure_animals_abstain() -> None:
    labels = ["cat", "dog", "other"]
    crops = [_crop([0.9, 0.1, 0.0]), _crop([0.3, 0.7, 0.0]), _crop([0.3, 0.7, 0.0])]
    assert _vote(crops, labels, 0.8, flip=False) == "cat"  # the two dogs abstain
    assert _vote(crops, labels, 0.6, flip=False) == "dog"  # 1.4 against 0.9
    mirrored = [_crop([0.9, 0.1, 0.0], [0.1, 0.9, 0.0])]
    assert _vote(mirrored, labels, 0.8, flip=True) is None  # 0.5 each: both abstain
