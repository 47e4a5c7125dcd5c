"""What a device's reported state says about its progress in a rollout (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from protocols import ReportedState

# Only a smoke-tested model counts: ``loaded`` is before the smoke test.
ACK_STAGES = frozenset({"warmed", "healthy"})
FAIL_STAGES = frozenset({"failed", "rolled_back"})


@dataclass(frozen=True)
class Verdict:
    event: Literal["acknowledge", "fail"]  # the move it asks of the device's row
    detail: str


def judge_report(release_id: str, mode: str, reported: ReportedState) -> Verdict | None:
    """What a reported state says about a device's progress to ``release_id`` (None: nothing)."""
    status = reported.shadow if mode == "shadow" else reported.active
    if status is not None and status.release_id == release_id:
        if status.stage in ACK_STAGES:
            return Verdict("acknowledge", f"{mode} release is {status.stage}")
        if status.stage in FAIL_STAGES:
            return Verdict("fail", f"{mode} release is {status.stage}")
    t = reported.last_transition
    if t is not None and t.to_release_id == release_id and not t.ok:
        return Verdict("fail", f"transition failed: {t.reason}"[:1024])
    return None
