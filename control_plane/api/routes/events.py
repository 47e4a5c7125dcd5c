"""``/api/v1/events``: stored ``DeviceEvent``s, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...schemas import Page
from ...services import telemetry
from ..deps import PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/events", tags=["events"])


@router.get("")
def list_events(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    device: Annotated[str | None, Query(description="Only this device's events.")] = None,
) -> Page[dict[str, Any]]:
    items, total = telemetry.list_events(
        session, device_id=device, limit=page.limit, offset=page.offset
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
