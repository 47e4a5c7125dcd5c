"""The rollout state machine and how a reported state is judged."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from control_plane.rollouts.service import can_move, judge_report, rollout_state
from control_plane.testing import reported_state
from protocols import ReportedState, Transition


@pytest.mark.parametrize("stage", ["loaded", "warmed", "healthy"])
def test_matching_release_in_a_good_stage_acknowledges(stage: str) -> None:
    verdict = judge_report("r1", "active", reported_state("d1", "r1", stage))
    assert verdict is not None and verdict.state == "acknowledged"


@pytest.mark.parametrize("stage", ["installed"])
def test_installed_is_not_yet_an_ack(stage: str) -> None:
    assert judge_report("r1", "active", reported_state("d1", "r1", stage)) is None


def test_other_release_says_nothing() -> None:
    assert judge_report("r2", "active", reported_state("d1", "r1")) is None
    assert judge_report("r1", "shadow", reported_state("d1", "r1")) is None  # active, not shadow


def test_failures() -> None:
    failed = judge_report("r1", "active", reported_state("d1", "r1", "rolled_back"))
    assert failed is not None and failed.state == "failed"
    report = ReportedState(
        device_id="d1", agent_version="0.1.0",
        last_transition=Transition(from_release_id="r0", to_release_id="r1", ok=False,
                                   reason="smoke test failed", at=datetime.now(UTC)),
    )
    verdict = judge_report("r1", "active", report)
    assert verdict is not None and verdict.state == "failed" and "smoke" in verdict.detail


def test_transitions() -> None:
    assert can_move("pending", "acknowledged")
    assert can_move("acknowledged", "failed")
    assert not can_move("acknowledged", "pending")
    assert not can_move("superseded", "acknowledged")
    assert not can_move("failed", "acknowledged")
    # Waves (issue 6): planned rows wait for their wave; offline ones may expire and still
    # acknowledge late; released rows can be rolled back; unsent ones cancelled.
    assert can_move("planned", "pending") and not can_move("planned", "acknowledged")
    assert can_move("pending", "expired") and can_move("expired", "acknowledged")
    assert can_move("acknowledged", "rolled_back") and can_move("planned", "cancelled")
    assert not can_move("rolled_back", "acknowledged")


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
