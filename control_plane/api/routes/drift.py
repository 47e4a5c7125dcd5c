"""``/api/v1/drift``: drift reports per device or fleet-wide, and on-demand analysis.

``parkwatch serve`` also runs the analysis every ``drift.analysis_interval_s``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from ...schemas import DriftReportPublic, Page
from ...services import alerts
from ..deps import BigIntId, OperateDep, PageDep, ReadDep, SessionDep, StateDep

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


class DriftRun(BaseModel):
    """Analyse now: the range ending now (default: the configured ``drift.range_minutes``)."""

    model_config = ConfigDict(extra="forbid")

    range_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    release_id: str | None = Field(None, max_length=64, description="Only this release.")


class DriftRunResult(BaseModel):
    fleet_reports: list[DriftReportPublic]
    device_reports: int
    drifted_devices: dict[str, list[str]]
    alerts_opened: list[int]
    alerts_resolved: list[int]
    skipped_releases: list[str] = Field(description="Releases with no known reference profile.")
    failed_releases: dict[str, str] = Field(
        default_factory=dict,
        description="Releases whose analysis failed, with the reason (the others went on).",
    )


@router.post("/run", summary="Compute drift reports now and update alerts")
def run_drift(
    body: DriftRun, session: SessionDep, state: StateDep, _p: OperateDep
) -> DriftRunResult:
    from ...drift.analyser import run_analysis

    result = run_analysis(
        session,
        state.settings.drift,
        range_minutes=body.range_minutes,
        release_id=body.release_id,
    )
    reports = [alerts.get_drift_report(session, i) for i in result.fleet_reports.values()]
    return DriftRunResult(
        fleet_reports=[alerts.drift_report_public(r) for r in reports],
        device_reports=result.device_reports,
        drifted_devices=result.drifted_devices,
        alerts_opened=[c.alert.id for c in result.changes if c.action == "opened"],
        alerts_resolved=[c.alert.id for c in result.changes if c.action == "resolved"],
        skipped_releases=result.skipped_releases,
        failed_releases=result.failed_releases,
    )


@router.get("/{report_id}", summary="Get one drift report with its statistics")
def get_drift_report(report_id: BigIntId, session: SessionDep, _p: ReadDep) -> DriftReportPublic:
    return alerts.drift_report_public(alerts.get_drift_report(session, report_id))
