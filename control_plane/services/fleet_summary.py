"""The fleet page's figures, counted by the store: its answer does not grow with the fleet.

Listing every device to count them in the browser cost the dashboard seconds at 10,000
devices (bench/fleet_scale.py); here each figure is one aggregate query, and the charts
get the newest windows reduced to the two numbers they draw.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..schemas import FleetSummary, ReleaseCount, WindowPoint
from ..store.models import Device, TelemetryWindowRecord

_REPORTED = Device.__table__.c["reported"]  # type: ignore[attr-defined]

# One row per camera of every device's reported state: the JSON array functions differ.
_CAMERA_STATES = {
    "postgresql": sa.text(
        "SELECT count(*) FILTER (WHERE c->>'state' = 'up'), "
        "count(*) FILTER (WHERE c->>'state' IS DISTINCT FROM 'up') FROM device, "
        "json_array_elements(CASE WHEN json_typeof(reported->'cameras') = 'array' "
        "THEN reported->'cameras' END) AS c"),
    "sqlite": sa.text(
        "SELECT coalesce(sum(json_extract(c.value, '$.state') = 'up'), 0), "
        "coalesce(sum(json_extract(c.value, '$.state') IS NOT 'up'), 0) FROM device, "
        "json_each(CASE WHEN json_type(device.reported, '$.cameras') = 'array' "
        "THEN device.reported END, '$.cameras') AS c"),
}


def _path(*keys: str) -> Any:
    return _REPORTED[keys].as_string()


def camera_counts(session: Session) -> tuple[int, int]:
    """(cameras up, cameras not up) over every device's last reported state."""
    dialect = session.get_bind().dialect.name
    up, not_up = session.execute(_CAMERA_STATES[dialect]).one()
    return int(up or 0), int(not_up or 0)


def _running(session: Session, kind: str) -> list[ReleaseCount]:
    """Devices per release they report as ``kind`` (active or shadow), and how many of
    them report it healthy."""
    release = _path(kind, "release_id")
    healthy = func.sum(sa.case((_path(kind, "stage") == "healthy", 1), else_=0))
    rows = session.execute(
        select(release, func.count(), healthy).where(release.is_not(None)).group_by(release)
    ).all()
    return [ReleaseCount(release_id=r, devices=n, healthy=int(h or 0)) for r, n, h in rows]


def _desired(session: Session) -> dict[str, int]:
    release = col(Device.desired_release_id)
    rows = session.execute(
        select(release, func.count()).where(release.is_not(None)).group_by(release)
    ).all()
    return {str(r): int(n) for r, n in rows}


def _point(device_id: str, window_end: Any, payload: dict[str, Any]) -> WindowPoint:
    cameras = [c for c in payload.get("cameras") or [] if isinstance(c, dict)]
    fps = sum(float(c.get("inference_fps") or 0.0) for c in cameras)
    p95s = [float(v) for c in cameras
            if isinstance(v := (c.get("inference_ms") or {}).get("p95"), int | float)]
    return WindowPoint(device_id=device_id, window_end=window_end, inference_fps=fps,
                       latency_p95_ms=max(p95s) if p95s else None)


def newest_points(session: Session, limit: int) -> list[WindowPoint]:
    """The newest ``limit`` windows by receipt (indexed), as chart points."""
    w = TelemetryWindowRecord
    rows = session.execute(
        select(w.device_id, w.window_end, w.payload)
        .order_by(col(w.received_at).desc(), col(w.id).desc()).limit(limit)
    ).all()
    return [_point(d, end, payload or {}) for d, end, payload in rows]


def fleet_summary(session: Session, *, windows: int) -> FleetSummary:
    total, online = session.execute(
        select(func.count(), func.sum(sa.case((col(Device.online).is_(True), 1), else_=0)))
        .select_from(Device)
    ).one()
    up, not_up = camera_counts(session)
    desired = _desired(session)
    releases = _running(session, "active")
    for r in releases:
        r.desired_by = desired.get(r.release_id, 0)
    releases.sort(key=lambda r: (-r.devices, r.release_id))
    shadows = sorted(_running(session, "shadow"), key=lambda r: (-r.devices, r.release_id))
    return FleetSummary(devices=int(total), online=int(online or 0), cameras_up=up,
                        cameras_not_up=not_up, releases=releases, shadows=shadows,
                        windows=newest_points(session, windows))
