"""``/api/v1/rollouts``: start a rollout, follow its waves and gates, steer it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Query, status
from sqlmodel import Session

from ...errors import InvalidRequestError
from ...rollouts import service as rollouts
from ...rollouts.policy import policy_for
from ...schemas import Page
from ...schemas.rollouts import RolloutAction, RolloutCreate, RolloutPublic
from ...services import devices, groups
from ..deps import OperateDep, PageDep, ReadDep, SessionDep, StateDep
from ..state import AppState

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


DeviceLimit = Annotated[int, Query(ge=0, le=100_000, description=(
    "Devices listed per rollout (by id; 0: none). Waves and device_states count all."))]
DeviceOffset = Annotated[int, Query(ge=0, description="Devices to skip in the listing.")]


@router.post("", status_code=status.HTTP_201_CREATED)
def start_rollout(
    body: RolloutCreate, session: SessionDep, state: StateDep, principal: OperateDep,
    background: BackgroundTasks,
) -> RolloutPublic:
    """Plan a rollout (every device ``planned``) and answer at once; its first wave goes
    out right after the answer, or at the engine's next tick."""
    targets, what = _targets(session, body)
    row = rollouts.plan_rollout(
        session, body.release_id, targets, body.mode, who=principal.name,
        policy=policy_for(state.settings.rollout_policy, body), supersede=body.supersede,
        target=what,
    )
    background.add_task(_first_wave, state, row.rollout_id)
    return rollouts.get_rollout(session, row.rollout_id)


def _first_wave(state: AppState, rollout_id: str) -> None:
    with Session(state.engine, expire_on_commit=False) as session:
        rollouts.advance(session, state.publisher, rollout_id)


@router.get("")
def list_rollouts(
    session: SessionDep, page: PageDep, _p: ReadDep,
    active: Annotated[bool | None, Query(description="Only active (or finished) ones.")] = None,
    device_limit: DeviceLimit = rollouts.DEVICE_PAGE,
) -> Page[RolloutPublic]:
    items, total = rollouts.list_rollouts(
        session, limit=page.limit, offset=page.offset, active=active, device_limit=device_limit
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{rollout_id}")
def get_rollout(rollout_id: str, session: SessionDep, _p: ReadDep,
                device_limit: DeviceLimit = rollouts.DEVICE_PAGE,
                device_offset: DeviceOffset = 0) -> RolloutPublic:
    return rollouts.get_rollout(session, rollout_id, device_limit=device_limit,
                                device_offset=device_offset)


def _act(
    action: rollouts.Action, rollout_id: str, body: RolloutAction | None, session: SessionDep,
    state: StateDep, who: str, background: BackgroundTasks,
) -> RolloutPublic:
    """Commit the action and answer; its desired states are published right after."""
    reason = body.reason if body is not None else None
    sent = rollouts.decide(session, rollout_id, action, who=who, reason=reason)
    if sent:
        background.add_task(_publish, state, sent)
    return rollouts.get_rollout(session, rollout_id)


def _publish(state: AppState, device_ids: list[str]) -> None:
    with Session(state.engine, expire_on_commit=False) as session:
        rollouts.publish_current(session, state.publisher, device_ids)


@router.post("/{rollout_id}/pause")
def pause_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                  principal: OperateDep, background: BackgroundTasks,
                  body: ActionBody = None) -> RolloutPublic:
    """Stop promoting; devices keep what they have."""
    return _act("pause", rollout_id, body, session, state, principal.name, background)


@router.post("/{rollout_id}/resume")
def resume_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                   principal: OperateDep, background: BackgroundTasks,
                   body: ActionBody = None) -> RolloutPublic:
    """Go on; a failed wave starts again."""
    return _act("resume", rollout_id, body, session, state, principal.name, background)


@router.post("/{rollout_id}/approve")
def approve_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                    principal: OperateDep, background: BackgroundTasks,
                    body: ActionBody = None) -> RolloutPublic:
    """Let the rollout go beyond its approval wave (audited with who and when)."""
    return _act("approve", rollout_id, body, session, state, principal.name, background)


@router.post("/{rollout_id}/abort")
def abort_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                  principal: OperateDep, background: BackgroundTasks,
                  body: ActionBody = None) -> RolloutPublic:
    """Stop for good; no further device gets the release."""
    return _act("abort", rollout_id, body, session, state, principal.name, background)


@router.post("/{rollout_id}/rollback")
def rollback_rollout(rollout_id: str, session: SessionDep, state: StateDep,
                     principal: OperateDep, background: BackgroundTasks,
                     body: ActionBody = None) -> RolloutPublic:
    """Every device that got the release goes back to its previous one."""
    return _act("rollback", rollout_id, body, session, state, principal.name, background)
