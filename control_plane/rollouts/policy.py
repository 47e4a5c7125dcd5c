"""A rollout's policy: the one it stored, or the server's defaults with a request's overrides.

The policy's fields and limits are the ``[rollout_policy]`` section (``config.rollout_policy``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..config.rollout_policy import GatePolicy, RolloutPolicy
from ..errors import InvalidRequestError
from ..schemas.rollouts import RolloutCreate
from ..store.models import Rollout


def policy_of(rollout: Rollout) -> RolloutPolicy:
    """The rollout's policy; a row from before waves existed ran one wave, ack only."""
    if rollout.policy is None:
        return RolloutPolicy(waves=["100%"], max_devices_per_minute=None,
                             gates={"min_windows": 0})  # type: ignore[arg-type]
    return RolloutPolicy.model_validate(rollout.policy)


def policy_for(defaults: RolloutPolicy, body: RolloutCreate) -> RolloutPolicy:
    """The server's default policy with the request's overrides."""
    fields = ("waves", "max_devices_per_minute", "approval_after_wave", "shadow_phase",
              "shadow_fraction", "on_gate_failure")
    update: dict[str, Any] = {f: getattr(body, f) for f in fields if getattr(body, f) is not None}
    try:
        if body.gates:
            update["gates"] = GatePolicy.model_validate(
                {**defaults.gates.model_dump(), **body.gates})
        return RolloutPolicy.model_validate({**defaults.model_dump(), **update})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequestError(f"invalid rollout policy: gates.{where}: {err['msg']}"
                                  if body.gates else f"invalid rollout policy: {err['msg']}"
                                  ) from None
