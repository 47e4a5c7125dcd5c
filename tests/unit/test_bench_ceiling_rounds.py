"""The fleet ingest benchmark's ratio to a broker ceiling that swings: each run over the
mean of the ceilings right before and after it, the median over rounds and its range."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _ceiling_rounds import Spread, bracketed, by_label, paired, spread, swing


def test_each_run_is_divided_by_the_mean_of_the_ceilings_around_it() -> None:
    # ceiling 10,000, run, ceiling 6,000, run, ceiling 14,000
    assert bracketed([10_000, 6_000, 14_000], [4_000, 5_000]) == pytest.approx([0.5, 0.5])


def test_a_run_needs_a_ceiling_on_either_side() -> None:
    with pytest.raises(ValueError, match="2 runs need 3 ceilings"):
        bracketed([10_000, 6_000], [4_000, 5_000])


def test_the_median_comes_with_the_lowest_and_highest() -> None:
    assert spread([0.4, 0.9, 0.5, 0.45]) == Spread(0.475, 0.4, 0.9, 4)
    assert str(spread([0.52, 0.48, 0.61])) == "0.52 (0.48-0.61, 3 runs)"
    assert str(spread([0.3])) == "0.30 (0.30-0.30, 1 run)"
    with pytest.raises(ValueError, match="no runs"):
        spread([])


def test_ratios_are_summarised_per_configuration_in_first_seen_order() -> None:
    out = by_label(["b", "a", "b", "a", "b"], [0.3, 0.6, 0.5, 0.8, 0.4])
    assert list(out) == ["b", "a"]
    assert out["b"] == Spread(0.4, 0.3, 0.5, 3)
    assert out["a"] == Spread(0.7, 0.6, 0.8, 2)


def test_the_ceilings_swing_is_highest_over_lowest() -> None:
    assert swing([5_865, 12_694, 10_207]) == pytest.approx(12_694 / 5_865)
    assert swing([8_000, 8_000]) == 1.0


def test_each_configuration_is_compared_with_the_base_run_of_its_own_round() -> None:
    # Round 1 ran on a slow machine, round 2 on a fast one: per round, b did 1.2x and
    # 1.25x of a, although b's slow run is below a's fast one.
    labels = ["a", "b", "c", "a", "b", "c"]
    rates = [1_000.0, 1_200.0, 900.0, 2_000.0, 2_500.0, 1_800.0]
    out = paired(labels, rates, "a")
    assert out["b"] == Spread(pytest.approx(1.225), 1.2, 1.25, 2)
    assert out["c"] == Spread(pytest.approx(0.9), 0.9, 0.9, 2)
    assert "a" not in out
