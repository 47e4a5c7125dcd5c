"""The rollout state machine and how a reported state is judged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from control_plane.rollouts.report import judge_report
from control_plane.rollouts.service import rollout_state
from control_plane.rollouts.states import DEVICE, ROLLOUT, WAVE
from control_plane.testing import reported_state
from protocols import ReportedState, Transition


@pytest.mark.parametrize("stage", ["warmed", "healthy"])
def test_matching_release_in_a_good_stage_acknowledges(stage: str) -> None:
    verdict = judge_report("r1", "active", reported_state("d1", "r1", stage))
    assert verdict is not None and verdict.event == "acknowledge"


@pytest.mark.parametrize("stage", ["installed", "loaded"])
def test_a_model_not_yet_smoke_tested_is_not_an_ack(stage: str) -> None:
    assert judge_report("r1", "active", reported_state("d1", "r1", stage)) is None


def test_other_release_says_nothing() -> None:
    assert judge_report("r2", "active", reported_state("d1", "r1")) is None
    assert judge_report("r1", "shadow", reported_state("d1", "r1")) is None  # active, not shadow


def test_failures() -> None:
    failed = judge_report("r1", "active", reported_state("d1", "r1", "rolled_back"))
    assert failed is not None and failed.event == "fail"
    report = ReportedState(
        device_id="d1", agent_version="0.1.0",
        last_transition=Transition(from_release_id="r0", to_release_id="r1", ok=False,
                                   reason="smoke test failed", at=datetime.now(UTC)),
    )
    verdict = judge_report("r1", "active", report)
    assert verdict is not None and verdict.event == "fail" and "smoke" in verdict.detail


def test_transitions() -> None:
    can_move = DEVICE.can_move
    assert can_move("pending", "acknowledged")
    assert can_move("acknowledged", "failed")
    assert not can_move("acknowledged", "pending")
    assert not can_move("superseded", "acknowledged")
    assert not can_move("failed", "acknowledged")
    # Planned rows wait for their wave; offline ones may expire and still acknowledge
    # late; released rows can be rolled back; unsent ones cancelled.
    assert can_move("planned", "pending") and not can_move("planned", "acknowledged")
    assert can_move("pending", "expired") and can_move("expired", "acknowledged")
    assert can_move("acknowledged", "rolled_back") and can_move("planned", "cancelled")
    assert not can_move("rolled_back", "acknowledged")


def test_the_shadow_phase_reset_is_a_named_move() -> None:
    assert DEVICE.next("acknowledged", "shadow_passed") == "planned"
    assert DEVICE.event_to("acknowledged", "planned") in {"shadow_passed", "retry"}
    assert not DEVICE.allows("superseded", "shadow_passed")


@pytest.mark.parametrize("machine", [ROLLOUT, WAVE, DEVICE], ids=lambda m: m.name)
def test_every_state_is_reachable_and_something_is_final(machine: object) -> None:
    assert isinstance(machine, type(DEVICE))
    seen, todo = {machine.initial}, [machine.initial]
    while todo:
        state = todo.pop()
        for source, _event, target in machine.edges():
            if source == state and target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == machine.states
    assert machine.final()


def test_final_states() -> None:
    assert ROLLOUT.final() == {"rolled_back", "superseded"}  # completed can still roll back
    assert WAVE.final() == {"passed", "cancelled"}
    assert DEVICE.final() == {"superseded", "cancelled"}  # a failed wave's rows are retried


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        (["pending", "acknowledged"], "in_progress"),
        (["acknowledged", "acknowledged"], "completed"),
        (["acknowledged", "superseded"], "completed"),
        (["acknowledged", "failed"], "failed"),
        (["superseded"], "superseded"),
    ],
)
def test_rollout_state(states: list[str], expected: str) -> None:
    assert rollout_state(states) == expected
