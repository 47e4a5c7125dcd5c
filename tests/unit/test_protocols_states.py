"""The state-machine toolkit every component uses for its tables."""

from __future__ import annotations

from typing import Literal

import pytest

from protocols.states import StateMachine, TransitionError

Light = Literal["red", "green", "amber", "off"]
LightEvent = Literal["go", "slow", "stop", "switch_off"]
LIGHT = StateMachine[Light, LightEvent]("light", "red", {
    "go": (["red"], "green"),
    "slow": (["green"], "amber"),
    "stop": (["amber"], "red"),
    "switch_off": (["red", "green", "amber"], "off"),
})


def test_next_follows_the_table() -> None:
    assert LIGHT.next("red", "go") == "green"
    assert LIGHT.next("amber", "switch_off") == "off"


def test_a_move_the_table_lacks_is_refused_with_where_it_is_allowed() -> None:
    with pytest.raises(TransitionError, match=r"light: cannot go from 'green' \(only from red\)"):
        LIGHT.next("green", "go")
    with pytest.raises(TransitionError, match="no event 'fly'"):
        LIGHT.next("red", "fly")  # type: ignore[arg-type]
    assert not LIGHT.allows("off", "go")


def test_states_events_and_final_states_come_from_the_table() -> None:
    assert LIGHT.states == {"red", "green", "amber", "off"}
    assert LIGHT.final() == {"off"}
    assert LIGHT.event_to("green", "amber") == "slow"
    assert LIGHT.event_to("green", "red") is None
    assert LIGHT.can_move("amber", "red") and not LIGHT.can_move("off", "red")


def test_mermaid_draws_every_edge() -> None:
    text = LIGHT.mermaid()
    assert text.splitlines()[:2] == ["stateDiagram-v2", "    [*] --> red"]
    assert "    green --> amber: slow" in text and "    off --> [*]" in text
    assert sum(" --> " in line for line in text.splitlines()) == 1 + len(LIGHT.edges()) + 1
