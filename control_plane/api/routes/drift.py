"""``/api/v1/drift``: drift reports per device or fleet-wide (written by drift analysis)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import Page
from ...schemas_ops import DriftReportPublic
from ...services import alerts
from ..deps import BigIntId, PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/drift", tags=["drift"])


@router.get("", summary="List drift reports, newest first")
def list_drift_reports(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    device: Annotated[str | None, Query(max_length=63)] = None,
    release: Annotated[str | None, Query(max_length=64)] = None,
    drifted: bool | None = None,
) -> Page[DriftReportPublic]:
    rows, total = alerts.list_drift_reports(
        session,
        device_id=device,
        release_id=release,
        drifted=drifted,
        limit=page.limit,
        offset=page.offset,
    )
    items = [alerts.drift_report_public(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{report_id}", summary="Get one drift report with its statistics")
def get_drift_report(report_id: BigIntId, session: SessionDep, _p: ReadDep) -> DriftReportPublic:
    return alerts.drift_report_public(alerts.get_drift_report(session, report_id))
