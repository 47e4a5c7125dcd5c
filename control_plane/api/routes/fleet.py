"""``/api/v1/fleet``: the fleet page's figures, aggregated by the store."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import FleetPage, FleetSummary
from ...services import fleet_page, fleet_summary
from ..deps import PageDep, ReadDep, SessionDep, StateDep, reads_only

router = APIRouter(prefix="/fleet", tags=["devices"])

Windows = Annotated[int, Query(ge=0, le=5000, description="How many of the newest windows "
                               "to chart.")]


@router.get("", summary="Devices online, cameras up, releases running, newest windows")
@reads_only
def get_fleet(session: SessionDep, state: StateDep, _p: ReadDep,
              windows: Windows = 1000) -> FleetSummary:
    # The device figures as counted at most fleet_counts_max_age_seconds ago (the answer
    # says when), so page loads do not scan the device table each; windows are read now.
    return fleet_summary.fleet_summary(session, windows=windows, counts=state.fleet_counts.get())


@router.get("/page", summary="The dashboard's fleet page in one answer: the figures above, "
            "a page of devices by id, the open alerts' and the dead letters' totals")
@reads_only
def get_fleet_page(session: SessionDep, state: StateDep, page: PageDep, _p: ReadDep,
                   windows: Windows = 1000) -> FleetPage:
    return fleet_page.fleet_page(session, windows=windows, limit=page.limit,
                                 offset=page.offset, counts=state.fleet_counts.get())
