"""Devices' clocks: one alert per device whose clock is off by more than a limit.

The skew (``Device.clock_skew_s``, the device's clock minus ours when its ``online``
arrived) is information: deadlines, ordering, analysis and retention all go by our
receipt time. A device far off still deserves an operator's look (its NTP is broken,
its battery-backed clock is flat), so an alert opens while it is off by more than
``clock_skew_alert_seconds`` and resolves itself once the device reconnects with a good
clock.
"""

from __future__ import annotations

import logging

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..store.models import Alert, Device, utc_now
from . import audit
from .alerts import ANALYSIS, raise_alert
from .states import ALERT

log = logging.getLogger(__name__)
KIND = "clock_skew"


def reconcile_skew_alerts(session: Session, limit_s: float) -> int:
    """Open, update or resolve the clock alerts (the caller commits); how many changed."""
    if limit_s <= 0:
        return 0
    skew = col(Device.clock_skew_s)
    off = dict(session.exec(
        select(Device.device_id, Device.clock_skew_s)
        .where(skew.is_not(None), func.abs(skew) > limit_s)
    ).all())
    alerts = {a.device_id: a for a in session.exec(
        select(Alert).where(col(Alert.kind) == KIND, col(Alert.state) != "resolved"))}
    now, changed = utc_now(), 0
    for device_id, seconds in off.items():
        message = (f"device {device_id}'s clock is {seconds:+.0f} s off the control plane's "
                   f"(limit {limit_s:g} s): check its NTP")
        alert = alerts.get(device_id)
        if alert is None:
            row = raise_alert(session, KIND, "warning", message, device_id=device_id,
                              detail={"clock_skew_s": seconds, "limit_s": limit_s})
            audit.record(session, ANALYSIS, "alert.open", f"alert:{row.id}", kind=KIND)
            changed += 1
        elif alert.detail.get("clock_skew_s") != seconds:
            alert.message, alert.updated_at = message, now
            alert.detail = {**alert.detail, "clock_skew_s": seconds}
            session.add(alert)
            changed += 1
    for alerted, alert in alerts.items():
        if alerted in off:
            continue
        alert.state = ALERT.next(alert.state, "resolve")
        alert.updated_at, alert.updated_by = now, ANALYSIS
        alert.detail = {**alert.detail, "resolved_because": "the clock is back within the limit"}
        session.add(alert)
        audit.record(session, ANALYSIS, "alert.resolved", f"alert:{alert.id}", kind=KIND)
        changed += 1
    if changed:
        log.info("clock skew alerts changed", extra={"count": changed, "limit_s": limit_s})
    return changed


__all__ = ["KIND", "reconcile_skew_alerts"]
