"""``/api/v1/park``: per camera, the animals in view, visits per hour and where they went."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import ParkView
from ...services import park
from ..deps import ReadDep, SessionDep

router = APIRouter(prefix="/park", tags=["park"])


@router.get("", summary="Animals per camera: in view now, per hour by class, heat map")
def park_view(
    session: SessionDep,
    _p: ReadDep,
    device: Annotated[
        list[str], Query(max_length=64, description="Only these devices (repeatable).")
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    hours: Annotated[int, Query(ge=1, le=park.MAX_HOURS, description="How far back.")] = 24,
) -> ParkView:
    return park.park_view(session, device_ids=device or None, hours=hours)
