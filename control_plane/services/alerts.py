"""Alerts (open -> acknowledged -> resolved) and the drift reports that often raise them.

The drift analysis writes reports through ``record_drift_report`` and keeps alerts in
step with what it finds through ``reconcile_alert``: at most one unresolved alert per
(kind, release), updated in place while the condition holds (de-duplication) and
resolved automatically when it subsides. Opening and resolving can be POSTed to a
webhook. Operators list alerts and acknowledge or resolve them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import ConflictError, NotFoundError
from ..schemas import AlertPublic, DriftReportPublic, Severity
from ..store.models import Alert, DriftReport, utc_now
from . import audit
from .states import ALERT, AlertState

log = logging.getLogger(__name__)
ANALYSIS = "drift-analysis"  # who: the audit name of automatic changes

def record_drift_report(
    session: Session,
    *,
    device_id: str | None,
    release_id: str | None,
    window_start: datetime,
    window_end: datetime,
    window_count: int,
    sample_count: int,
    drifted: bool,
    statistics: dict[str, Any],
) -> DriftReport:
    """Add a drift report to the session (the caller commits)."""
    row = DriftReport(
        device_id=device_id,
        release_id=release_id,
        window_start=window_start,
        window_end=window_end,
        window_count=window_count,
        sample_count=sample_count,
        drifted=drifted,
        statistics=statistics,
    )
    session.add(row)
    session.flush()
    return row


def record_drift_reports(session: Session, reports: Sequence[dict[str, Any]]) -> None:
    """Add many drift reports (``record_drift_report``'s arguments, one dict each) in one
    bulk INSERT: a fleet report writes one per device, and a flush per row was most of
    its time. Each report's statistics are serialized by pydantic-core (``Infinity`` and
    ``NaN`` kept, as ``json.dumps`` writes them), about five times faster than the JSON
    column's ``json.dumps`` on a 3 KB device report. The caller commits."""
    if reports:
        now = utc_now()
        table: sa.Table = DriftReport.__table__  # type: ignore[attr-defined]
        text = sa.bindparam("statistics_text", type_=sa.Text)
        # PostgreSQL takes the text as JSON through a cast; SQLite stores it as it is.
        value = (sa.cast(text, table.c.statistics.type)
                 if session.get_bind().dialect.name == "postgresql" else text)
        rows = [{"created_at": now, **{k: v for k, v in r.items() if k != "statistics"},
                 "statistics_text": to_json(r["statistics"], inf_nan_mode="constants").decode()}
                for r in reports]
        session.execute(sa.insert(table).values(statistics=value), rows)


def raise_alert(
    session: Session,
    kind: str,
    severity: Severity,
    message: str,
    *,
    device_id: str | None = None,
    release_id: str | None = None,
    drift_report_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> Alert:
    """Add an open alert to the session (the caller commits)."""
    row = Alert(
        kind=kind[:32],
        severity=severity,
        state=ALERT.initial,
        message=message[:1024],
        device_id=device_id,
        release_id=release_id,
        drift_report_id=drift_report_id,
        detail=detail or {},
    )
    session.add(row)
    session.flush()
    return row


def get_alert(session: Session, alert_id: int) -> Alert:
    row = session.get(Alert, alert_id)
    if row is None:
        raise NotFoundError(f"no alert {alert_id}: see `parkwatch alerts list`")
    return row


def update_alert(
    session: Session, alert_id: int, state: AlertState, note: str | None, *, who: str
) -> Alert:
    row = get_alert(session, alert_id)
    event = ALERT.event_to(row.state, state)
    if event is None:
        raise ConflictError(f"alert {alert_id} is {row.state}; it cannot become {state}")
    before = row.state
    row.state, row.updated_at, row.updated_by = ALERT.next(row.state, event), utc_now(), who
    session.add(row)
    audit.record(session, who, f"alert.{state}", f"alert:{alert_id}", from_state=before, note=note)
    session.commit()
    return row


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    kind: str | None = None
    severity: str | None = None
    device_id: str | None = None


def list_alerts(
    session: Session, flt: AlertFilter, *, limit: int, offset: int
) -> tuple[list[Alert], int]:
    where = [
        getattr(Alert, name) == value
        for name, value in (
            ("state", flt.state),
            ("kind", flt.kind),
            ("severity", flt.severity),
            ("device_id", flt.device_id),
        )
        if value is not None
    ]
    total = session.exec(select(func.count()).select_from(Alert).where(*where)).one()
    rows = session.exec(
        select(Alert)
        .where(*where)
        .order_by(col(Alert.created_at).desc(), col(Alert.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def alert_public(row: Alert) -> AlertPublic:
    return AlertPublic.model_validate(row, from_attributes=True)


def get_drift_report(session: Session, report_id: int) -> DriftReport:
    row = session.get(DriftReport, report_id)
    if row is None:
        raise NotFoundError(f"no drift report {report_id}: see `parkwatch drift list`")
    return row


def list_drift_reports(
    session: Session,
    *,
    device_id: str | None,
    release_id: str | None,
    drifted: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[DriftReport], int]:
    where: list[Any] = []
    if device_id is not None:
        where.append(col(DriftReport.device_id) == device_id)
    if release_id is not None:
        where.append(col(DriftReport.release_id) == release_id)
    if drifted is not None:
        where.append(col(DriftReport.drifted).is_(drifted))
    total = session.exec(select(func.count()).select_from(DriftReport).where(*where)).one()
    rows = session.exec(
        select(DriftReport)
        .where(*where)
        .order_by(col(DriftReport.created_at).desc(), col(DriftReport.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def drift_report_public(row: DriftReport) -> DriftReportPublic:
    return DriftReportPublic.model_validate(row, from_attributes=True)


@dataclass(frozen=True)
class AlertChange:
    """What ``reconcile_alert`` did: opened and resolved go to the webhook; updated does not."""

    action: Literal["opened", "updated", "resolved"]
    alert: AlertPublic


def _unresolved(session: Session, kind: str, release_id: str | None) -> Alert | None:
    return session.exec(
        select(Alert)
        .where(
            col(Alert.kind) == kind,
            col(Alert.release_id) == release_id,
            col(Alert.device_id).is_(None),
            col(Alert.state) != "resolved",
        )
        .order_by(col(Alert.id))
    ).first()


def reconcile_alert(
    session: Session,
    kind: str,
    release_id: str | None,
    *,
    firing: bool,
    severity: Severity,
    message: str,
    detail: dict[str, Any],
    drift_report_id: int | None = None,
) -> AlertChange | None:
    """Open, update (de-duplicate) or auto-resolve the one alert of (kind, release).

    An acknowledged alert stays acknowledged while the condition holds. The caller commits.
    """
    row = _unresolved(session, kind, release_id)
    now = utc_now()
    if firing and row is None:
        row = raise_alert(
            session,
            kind,
            severity,
            message,
            release_id=release_id,
            drift_report_id=drift_report_id,
            detail=detail,
        )
        audit.record(session, ANALYSIS, "alert.open", f"alert:{row.id}", kind=kind)
        return AlertChange("opened", alert_public(row))
    if row is None:
        return None
    if firing:
        # Merge: keys others added (the job a trigger created) survive the update.
        row.message, row.detail, row.updated_at = message[:1024], {**row.detail, **detail}, now
        row.drift_report_id = drift_report_id or row.drift_report_id
        session.add(row)
        session.flush()
        return AlertChange("updated", alert_public(row))
    before = row.state
    row.state, row.updated_at, row.updated_by = ALERT.next(row.state, "resolve"), now, ANALYSIS
    row.detail = {**row.detail, "resolved_because": message[:1024]}
    session.add(row)
    session.flush()
    audit.record(
        session, ANALYSIS, "alert.resolved", f"alert:{row.id}", from_state=before, note=message
    )
    return AlertChange("resolved", alert_public(row))


def notify_webhook(url: str | None, changes: Sequence[AlertChange], timeout_s: float) -> int:
    """POST each opened or resolved alert to ``url``; failures are logged, never raised
    (a webhook outage must not stop drift analysis). Returns how many were delivered."""
    wanted = [c for c in changes if c.action != "updated"]
    if url is None or not wanted:
        return 0
    import httpx

    delivered = 0
    with httpx.Client(timeout=timeout_s) as client:
        for change in wanted:
            alert = change.alert.model_dump(mode="json")
            body = {"event": f"alert.{change.action}", "alert": alert}
            try:
                client.post(url, json=body).raise_for_status()
                delivered += 1
            except httpx.HTTPError as exc:
                log.warning(
                    "alert webhook failed", extra={"alert_id": change.alert.id, "error": str(exc)}
                )
    return delivered
