"""``/api/v1/fleet``: the fleet page's figures, aggregated by the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import FleetSummary
from ...services import fleet_summary
from ..deps import ReadDep, SessionDep

router = APIRouter(prefix="/fleet", tags=["devices"])


@router.get("", summary="Devices online, cameras up, releases running, newest windows")
def get_fleet(
    session: SessionDep,
    _p: ReadDep,
    windows: Annotated[
        int, Query(ge=0, le=5000, description="How many of the newest windows to chart.")
    ] = 1000,
) -> FleetSummary:
    return fleet_summary.fleet_summary(session, windows=windows)
