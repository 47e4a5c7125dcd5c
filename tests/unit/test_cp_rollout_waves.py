"""Wave planning: cumulative sizes, canary spread across parks, the release rate."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.errors import InvalidRequestError
from control_plane.rollouts.waves import (
    Candidate,
    assign_waves,
    cumulative_sizes,
    order_for_waves,
    release_budget,
)


@pytest.mark.parametrize(
    ("steps", "total", "sizes"),
    [
        (["1", "10%", "50%", "100%"], 40, [1, 4, 20, 40]),
        (["1", "10%", "50%", "100%"], 2, [1, 2]),  # steps adding nobody are dropped
        (["1", "10%", "50%", "100%"], 1, [1]),
        (["5"], 3, [3]),
        (["1", "10%"], 100, [1, 10, 100]),  # a plan stopping short gets a final wave
        (["100%"], 7, [7]),
        (["0.5%", "100%"], 1000, [5, 1000]),
    ],
)
def test_cumulative_sizes(steps: list[str], total: int, sizes: list[int]) -> None:
    assert cumulative_sizes(steps, total) == sizes


@pytest.mark.parametrize(
    ("steps", "message"),
    [([], "empty"), (["50%", "10%"], "increasing order"), (["0%"], "(0, 100]"),
     (["0"], "at least 1"), (["x"], "neither")],
)
def test_bad_steps_name_the_fix(steps: list[str], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(").replace(
            "]", r"\]")):
        cumulative_sizes(steps, 10)


@given(st.lists(st.sampled_from(["1", "2", "10%", "25%", "50%", "100%"]), min_size=1),
       st.integers(1, 500))
def test_sizes_are_increasing_and_cover_everyone(steps: list[str], total: int) -> None:
    try:
        sizes = cumulative_sizes(steps, total)
    except InvalidRequestError:
        return  # out of order
    assert sizes[-1] == total
    assert all(a < b for a, b in itertools.pairwise(sizes))


def test_canary_is_online_and_waves_spread_across_parks() -> None:
    devices = [
        Candidate("a1", False, {"park": "a"}),
        Candidate("a2", True, {"park": "a"}),
        Candidate("a3", True, {"park": "a"}),
        Candidate("b1", True, {"park": "b"}),
        Candidate("c1", True, {}),
    ]
    assert order_for_waves(devices, "park") == ["c1", "a2", "b1", "a3", "a1"]
    waves = assign_waves(devices, ["1", "60%", "100%"], "park")
    assert waves == {"c1": 1, "a2": 2, "b1": 2, "a3": 3, "a1": 3}
    assert order_for_waves(devices, None) == ["a2", "a3", "b1", "c1", "a1"]


@pytest.mark.parametrize(
    ("rate", "elapsed", "released", "waiting", "budget"),
    [
        (None, 0.0, 0, 50, 50),
        (60, 0.0, 0, 50, 1),  # a second's worth at once
        (600, 0.0, 0, 50, 10),
        (60, 10.0, 1, 50, 10),  # 11 allowed after 10 s, 1 already out
        (60, 10.0, 11, 50, 0),
        (6000, 0.0, 0, 3, 3),
        (1, 0.0, 0, 5, 1),
    ],
)
def test_release_budget(rate: int | None, elapsed: float, released: int, waiting: int,
                        budget: int) -> None:
    assert release_budget(rate, elapsed, released, waiting) == budget
