"""What a device's reported state says about its progress in a rollout (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocols import ReportedState

DeviceState = Literal[
    "planned", "pending", "acknowledged", "failed", "expired", "rolled_back", "superseded",
    "cancelled",
]
# Every move a device's row can make (``engine`` makes them).
DEVICE_TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"pending", "superseded", "cancelled"}),
    "pending": frozenset({"acknowledged", "failed", "expired", "superseded", "rolled_back"}),
    "acknowledged": frozenset({"failed", "superseded", "rolled_back"}),
    "expired": frozenset({"acknowledged"}),
    "failed": frozenset(),
    "rolled_back": frozenset(),
    "superseded": frozenset(),
    "cancelled": frozenset(),
}
ACK_STAGES = frozenset({"loaded", "warmed", "healthy"})
FAIL_STAGES = frozenset({"failed", "rolled_back"})


def can_move(current: str, new: str) -> bool:
    return new in DEVICE_TRANSITIONS.get(current, frozenset())


@dataclass(frozen=True)
class Verdict:
    state: DeviceState
    detail: str


def judge_report(release_id: str, mode: str, reported: ReportedState) -> Verdict | None:
    """What a reported state says about a device's progress to ``release_id`` (None: nothing)."""
    status = reported.shadow if mode == "shadow" else reported.active
    if status is not None and status.release_id == release_id:
        if status.stage in ACK_STAGES:
            return Verdict("acknowledged", f"{mode} release is {status.stage}")
        if status.stage in FAIL_STAGES:
            return Verdict("failed", f"{mode} release is {status.stage}")
    t = reported.last_transition
    if t is not None and t.to_release_id == release_id and not t.ok:
        return Verdict("failed", f"transition failed: {t.reason}"[:1024])
    return None
