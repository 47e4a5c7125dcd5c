"""``/api/v1/rollouts``: start a rollout, follow its waves and gates, steer it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from ...errors import InvalidRequestError
from ...rollouts import service as rollouts
from ...rollouts.policy import policy_for
from ...schemas import Page
from ...schemas.rollouts import RolloutAction, RolloutCreate, RolloutPublic
from ...services import devices, groups
from ..deps import OperateDep, PageDep, ReadDep, SessionDep, StateDep

router = APIRouter(prefix="/rollouts", tags=["rollouts"])
ActionBody = Annotated[RolloutAction | None, Body()]


def _targets(session: SessionDep, body: RolloutCreate) -> tuple[list[str] | None, dict[str, Any]]:
    given = [n for n in ("devices", "group", "labels") if getattr(body, n) is not None]
    if len(given) > 1:
        raise InvalidRequestError(f"give one of devices, group or labels, not {given}")
    if body.group is None and body.labels is None:
        return body.devices, {"devices": "all" if body.devices is None else len(body.devices)}
    if body.group is not None:
        flt = devices.DeviceFilter(group_selector=groups.get_group(session, body.group).selector)
        what: dict[str, Any] = {"group": body.group}
    else:
        flt = devices.DeviceFilter(labels=dict(body.labels or {}))
        what = {"labels": body.labels}
    members, _ = devices.list_devices(session, limit=100_000, offset=0, flt=flt)
    if not members:
        raise InvalidRequestError(f"no device matches {what}: label some first")
    return [d.device_id for d in members], what


@router.post("", status_code=status.HTTP_201_CREATED)
def start_rollout(
    body: RolloutCreate, session: SessionDep, state: StateDep, principal: OperateDep
) -> RolloutPublic:
    targets, what = _targets(session, body)
    row = rollouts.start_rollout(
        session, state.publisher, body.release_id, targets, body.mode, who=principal.name,
        policy=policy_for(state.settings.rollout_policy, body), supersede=body.supersede,
        target=what,
    )
    return rollouts.get_rollout(session, row.rollout_id)


@router.get("")
def list_rollouts(
    session: SessionDep, page: PageDep, _p: ReadDep,
    active: Annotated[bool | None, Query(description="Only active (or finished) ones.")] = None,
) -> Page[RolloutPublic]:
    items, total = rollouts.list_rollouts(
        session, limit=page.limit, offset=page.offset, active=active
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{rollout_id}")
def get_rollout(rollout_id: str, session: SessionDep, _p: ReadDep) -> RolloutPublic:
    return rollouts.get_rollout(session, rollout_id)


def _act(
    action: rollouts.Action, rollout_id: str, body: RolloutAction | None, session: SessionDep,
    state: StateDep, who: str,
) -> RolloutPublic:
    reason = body.reason if body is not None else None
    rollouts.act(session, state.publisher, rollout_id, action, who=who, reason=reason)
    return rollouts.get_rollout(session, rollout_id)


@router.post("/{rollout_id}/pause")
def pause_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                  principal: OperateDep, body: ActionBody = None) -> RolloutPublic:
    """Stop promoting; devices keep what they have."""
    return _act("pause", rollout_id, body, session, state, principal.name)


@router.post("/{rollout_id}/resume")
def resume_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                   principal: OperateDep, body: ActionBody = None) -> RolloutPublic:
    """Go on; a failed wave starts again."""
    return _act("resume", rollout_id, body, session, state, principal.name)


@router.post("/{rollout_id}/approve")
def approve_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                    principal: OperateDep, body: ActionBody = None) -> RolloutPublic:
    """Let the rollout go beyond its approval wave (audited with who and when)."""
    return _act("approve", rollout_id, body, session, state, principal.name)


@router.post("/{rollout_id}/abort")
def abort_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                  principal: OperateDep, body: ActionBody = None) -> RolloutPublic:
    """Stop for good; no further device gets the release."""
    return _act("abort", rollout_id, body, session, state, principal.name)


@router.post("/{rollout_id}/rollback")
def rollback_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                     principal: OperateDep, body: ActionBody = None) -> RolloutPublic:
    """Every device that got the release goes back to its previous one."""
    return _act("rollback", rollout_id, body, session, state, principal.name)
