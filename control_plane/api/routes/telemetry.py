"""``/api/v1/telemetry``: stored telemetry windows, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import Page, TelemetryWindowPublic
from ...services import telemetry
from ..deps import PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/telemetry", tags=["telemetry"])


@router.get("")
def list_windows(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    device: Annotated[str | None, Query(description="Only this device's windows.")] = None,
) -> Page[TelemetryWindowPublic]:
    rows, total = telemetry.list_windows(
        session, device_id=device, limit=page.limit, offset=page.offset
    )
    items = [
        TelemetryWindowPublic(
            device_id=r.device_id,
            seq=r.seq,
            window_start=r.window_start,
            window_end=r.window_end,
            release_id=r.release_id,
            received_at=r.received_at,
            window=r.payload,
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
