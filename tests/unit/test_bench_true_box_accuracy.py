"""The true-box bench's company rule and its per-animal tallies."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from true_box_accuracy import Seen, _cells, _company, _split


def test_a_crop_has_company_when_a_tenth_of_another_animal_is_in_its_square() -> None:
    dog = (100.0, 100.0, 200.0, 160.0)  # its crop's square at context 0.1: 90-210 x 70-190
    assert not _company(dog, [(215.0, 100.0, 260.0, 150.0)], 0.1)
    assert _company(dog, [(200.0, 100.0, 260.0, 150.0)], 0.1)  # 10 of 60 px wide inside
    assert not _company(dog, [(206.0, 100.0, 260.0, 150.0)], 0.1)  # 4 of 54: under a tenth


def _seen(tops: list[str], company: list[bool], counted: list[bool]) -> Seen:
    an = Seen(1, 1, "cat", "cat/1.jpg", 0.2, company)
    an.tops["m"], an.counted["m"] = tops, counted
    return an


def test_an_animal_is_right_when_most_of_its_crops_are_and_company_splits_them() -> None:
    cat = _seen(["cat", "cat", "dog"], [False, True, True], [True, True, False])
    half = _seen(["cat", "dog"], [False, False], [True, True])
    crops, abstained, animals = _cells([cat, half], "m")
    assert crops.startswith("60.0% (3/5)")
    assert abstained == "20.0%"
    assert animals.startswith("50.0% (1/2)")  # 1 of 2 is not most
    alone = _split([cat, half], "m", company=False)
    assert [a.tops["m"] for a in alone] == [["cat"], ["cat", "dog"]]
    assert [a.tops["m"] for a in _split([cat, half], "m", company=True)] == [["cat", "dog"]]
