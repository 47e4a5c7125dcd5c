"""``/api/v1/rollouts``: target devices with a release; follow their progress."""

from __future__ import annotations

from fastapi import APIRouter, status

from ...errors import InvalidRequestError
from ...schemas import Page, RolloutCreate, RolloutPublic
from ...services import devices, groups, rollouts
from ..deps import OperateDep, PageDep, ReadDep, SessionDep, StateDep

router = APIRouter(prefix="/rollouts", tags=["rollouts"])


@router.post("", status_code=status.HTTP_201_CREATED)
def start_rollout(
    body: RolloutCreate, session: SessionDep, state: StateDep, principal: OperateDep
) -> RolloutPublic:
    targets = body.devices
    if body.group is not None:
        if targets is not None:
            raise InvalidRequestError("give devices or group, not both")
        selector = groups.get_group(session, body.group).selector
        members, _ = devices.list_devices(
            session, limit=100_000, offset=0, flt=devices.DeviceFilter(group_selector=selector)
        )
        targets = [d.device_id for d in members]
        if not targets:
            raise InvalidRequestError(f"group {body.group!r} has no devices: label some first")
    row = rollouts.start_rollout(
        session, state.publisher, body.release_id, targets, body.mode, who=principal.name
    )
    return rollouts.get_rollout(session, row.rollout_id)


@router.get("")
def list_rollouts(session: SessionDep, page: PageDep, _p: ReadDep) -> Page[RolloutPublic]:
    items, total = rollouts.list_rollouts(session, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{rollout_id}")
def get_rollout(rollout_id: str, session: SessionDep, _p: ReadDep) -> RolloutPublic:
    return rollouts.get_rollout(session, rollout_id)
