"""The rollout's three state machines: the rollout, each wave, and each device in it.

Each machine is one table (``protocols.states.StateMachine``) and one function that
makes a move on a stored row (``move_rollout``, ``move_wave``, ``move_device``): the
engine and the operator actions change a state only through these, and a move the
table does not allow raises ``TransitionError``. docs/architecture.md draws the tables.

This module is vocabulary: it imports nothing else of the control plane, so the store's
gauges and the API bodies may use it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from protocols.states import StateMachine

RolloutState = Literal[
    "in_progress", "awaiting_approval", "paused", "completed", "aborted", "rolled_back",
    "superseded",
]
RolloutEvent = Literal[
    "wait_for_approval", "approve", "pause", "fail_gate", "resume", "complete", "abort",
    "roll_back", "supersede",
]
WaveState = Literal["planned", "running", "passed", "failed", "rolled_back", "cancelled"]
WaveEvent = Literal["start", "pass", "fail", "roll_back", "retry", "cancel"]
DeviceState = Literal[
    "planned", "pending", "acknowledged", "failed", "expired", "rolled_back", "superseded",
    "cancelled",
]
DeviceEvent = Literal[
    "release", "acknowledge", "fail", "expire", "roll_back", "supersede", "cancel",
    "shadow_passed", "retry",
]

# A rollout in these states holds its devices: one device is in at most one of them.
ACTIVE_STATES: frozenset[RolloutState] = frozenset({"in_progress", "awaiting_approval", "paused"})

ROLLOUT = StateMachine[RolloutState, RolloutEvent]("rollout", "in_progress", {
    "wait_for_approval": (["in_progress"], "awaiting_approval"),
    "approve": (["awaiting_approval"], "in_progress"),
    "pause": (["in_progress", "awaiting_approval"], "paused"),
    "fail_gate": (["in_progress"], "paused"),
    "resume": (["paused"], "in_progress"),
    "complete": (["in_progress"], "completed"),
    "abort": (ACTIVE_STATES, "aborted"),
    "roll_back": ([*ACTIVE_STATES, "completed", "aborted"], "rolled_back"),
    "supersede": (ACTIVE_STATES, "superseded"),  # a newer rollout took its last devices
})

WAVE = StateMachine[WaveState, WaveEvent]("rollout wave", "planned", {
    "start": (["planned"], "running"),
    "pass": (["running"], "passed"),
    "fail": (["running"], "failed"),
    "roll_back": (["failed"], "rolled_back"),  # on_gate_failure = "rollback"
    "retry": (["failed", "rolled_back"], "planned"),  # resume after a failed gate
    "cancel": (["planned", "running"], "cancelled"),
})

# Rows of a device in a rollout. The shadow phase (wave 0) runs on wave 1's devices:
# when it passes, they go again, serving the release (``shadow_passed``).
DEVICE = StateMachine[DeviceState, DeviceEvent]("rollout device", "planned", {
    "release": (["planned"], "pending"),
    "acknowledge": (["pending", "expired"], "acknowledged"),  # expired: a late device
    "fail": (["pending", "acknowledged"], "failed"),
    "expire": (["pending"], "expired"),  # offline past the deadline
    "roll_back": (["pending", "acknowledged"], "rolled_back"),
    "supersede": (["planned", "pending", "acknowledged"], "superseded"),
    "cancel": (["planned"], "cancelled"),
    "shadow_passed": (["pending", "acknowledged"], "planned"),
    "retry": (["planned", "pending", "acknowledged", "failed", "expired", "rolled_back"],
              "planned"),
})

# Rows that hold their device for the rollout, and rows whose device got the release.
OWNING_ROW_STATES: frozenset[DeviceState] = frozenset({"planned", "pending", "acknowledged"})
RELEASED_ROW_STATES: frozenset[DeviceState] = frozenset(
    {"pending", "acknowledged", "failed", "expired"})


class _RolloutRow(Protocol):
    state: str
    updated_at: datetime
    paused_reason: str | None


class _WaveRow(Protocol):
    state: str
    started_at: datetime | None
    finished_at: datetime | None


class _DeviceRow(Protocol):
    state: str
    detail: str | None
    updated_at: datetime


def move_rollout(rollout: _RolloutRow, event: RolloutEvent, now: datetime,
                 reason: str | None = None) -> None:
    """Move a rollout; ``reason`` (why it is paused, aborted, ...) replaces the last one."""
    rollout.state = ROLLOUT.next(rollout.state, event)
    rollout.updated_at = now
    rollout.paused_reason = reason[:1024] if reason else None


def move_wave(wave: _WaveRow, event: WaveEvent, now: datetime) -> None:
    """Move a wave and stamp when it started or finished (a retried wave starts afresh)."""
    wave.state = WAVE.next(wave.state, event)
    if event == "start":
        wave.started_at = now
    elif event == "retry":
        wave.started_at = wave.finished_at = None
    elif event != "roll_back":  # the wave finished when it failed
        wave.finished_at = now


def move_device(row: _DeviceRow, event: DeviceEvent, now: datetime, detail: str) -> None:
    """Move a device's row; ``detail`` says why, for ``rollouts status``."""
    row.state = DEVICE.next(row.state, event)
    row.detail, row.updated_at = detail[:1024], now


__all__ = [
    "ACTIVE_STATES", "DEVICE", "OWNING_ROW_STATES", "RELEASED_ROW_STATES", "ROLLOUT", "WAVE",
    "DeviceEvent", "DeviceState", "RolloutEvent", "RolloutState", "WaveEvent", "WaveState",
    "move_device", "move_rollout", "move_wave",
]
