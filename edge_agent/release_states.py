"""A release's stages on the agent: one table, and the two functions that make its moves.

The reported state shows a stage for the active release and one for the shadow
candidate (``protocols.ReleaseStage``). The release worker changes a stage only through
``begin`` (a release entering a slot) and ``advance`` (a move of the table below):

- ``installed``: downloaded, hash and signature verified, written atomically;
- ``loaded``: an ONNX Runtime session is built from it;
- ``warmed``: its smoke test passed; it serves (or, in shadow mode, sees mirrored frames);
- ``healthy``: a clean telemetry window (frames inferred, no error) since it warmed;
- ``rolled_back``: it serves again because the release that replaced it failed at run
  time; a clean window makes it healthy;
- ``failed``: it was refused before it could serve (shadow candidates report this).

Only ``healthy`` counts toward a rollout wave's success (docs/architecture.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from protocols import ReleaseStatus
from protocols.messages import ReleaseStage
from protocols.states import StateMachine

ReleaseEvent = Literal["load", "warm", "pass_window", "roll_back_to", "fail"]

RELEASE = StateMachine[ReleaseStage, ReleaseEvent]("release on the agent", "installed", {
    "load": (["installed"], "loaded"),
    "warm": (["loaded"], "warmed"),
    "pass_window": (["warmed", "rolled_back"], "healthy"),
    "roll_back_to": (["warmed"], "rolled_back"),
    "fail": (["installed", "loaded"], "failed"),
})


def begin(release_id: str, model_version: str, *events: ReleaseEvent) -> ReleaseStatus:
    """The status of a release entering a slot (``installed``), moved by ``events``."""
    stage = RELEASE.initial
    for event in events:
        stage = RELEASE.next(stage, event)
    return ReleaseStatus(release_id=release_id, model_version=model_version, stage=stage,
                         since=datetime.now(UTC))


def advance(status: ReleaseStatus, event: ReleaseEvent) -> ReleaseStatus:
    """``status`` after ``event``, stamped now; TransitionError if the table lacks the move."""
    return status.model_copy(
        update={"stage": RELEASE.next(status.stage, event), "since": datetime.now(UTC)})


__all__ = ["RELEASE", "ReleaseEvent", "advance", "begin"]
