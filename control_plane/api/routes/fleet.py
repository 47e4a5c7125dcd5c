"""``/api/v1/fleet``: the fleet page's figures, aggregated by the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import FleetSummary
from ...services import fleet_summary
from ..deps import ReadDep, SessionDep, StateDep, reads_only

router = APIRouter(prefix="/fleet", tags=["devices"])


@router.get("", summary="Devices online, cameras up, releases running, newest windows")
@reads_only
def get_fleet(
    session: SessionDep,
    state: StateDep,
    _p: ReadDep,
    windows: Annotated[
        int, Query(ge=0, le=5000, description="How many of the newest windows to chart.")
    ] = 1000,
) -> FleetSummary:
    # The device figures as counted at most fleet_counts_max_age_seconds ago (the answer
    # says when), so page loads do not scan the device table each; windows are read now.
    return fleet_summary.fleet_summary(session, windows=windows, counts=state.fleet_counts.get())
