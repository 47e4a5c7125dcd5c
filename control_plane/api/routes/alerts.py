"""``/api/v1/alerts``: list, acknowledge and resolve alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import AlertPublic, AlertState, AlertUpdate, Page, Severity
from ...services import alerts
from ..deps import IntId, OperateDep, PageDep, ReadDep, SessionDep, reads_only

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("", summary="List alerts, newest first")
@reads_only
def list_alerts(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    state: AlertState | None = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    severity: Severity | None = None,
    device: Annotated[str | None, Query(max_length=63)] = None,
) -> Page[AlertPublic]:
    flt = alerts.AlertFilter(state=state, kind=kind, severity=severity, device_id=device)
    rows, total = alerts.list_alerts(session, flt, limit=page.limit, offset=page.offset)
    items = [alerts.alert_public(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{alert_id}", summary="Get one alert")
def get_alert(alert_id: IntId, session: SessionDep, _p: ReadDep) -> AlertPublic:
    return alerts.alert_public(alerts.get_alert(session, alert_id))


@router.patch("/{alert_id}", summary="Acknowledge or resolve an alert (audited)")
def update_alert(
    alert_id: IntId, body: AlertUpdate, session: SessionDep, principal: OperateDep
) -> AlertPublic:
    row = alerts.update_alert(session, alert_id, body.state, body.note, who=principal.name)
    return alerts.alert_public(row)
