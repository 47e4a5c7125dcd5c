"""The fleet page's figures, counted by the store: its answer does not grow with the fleet.

Listing every device to count them in the browser cost the dashboard seconds at 10,000
devices (bench/fleet_scale.py); here the figures come from one aggregate query over
columns that ingest writes beside each reported state (``reported_columns``), and the
charts get the newest windows reduced by the database to the two numbers they draw.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..schemas import FleetSummary, ReleaseCount, WindowPoint
from ..store.models import Device, TelemetryWindowRecord

# Per window id: frames inferred per second over its cameras and the worst camera's p95,
# read by the database from the stored JSON (the payloads never leave it).
_POINT_FIGURES = {
    "postgresql": sa.text(
        "SELECT w.id, sum((c->>'inference_fps')::float), max((c->'inference_ms'->>'p95')::float)"
        " FROM telemetry_window AS w LEFT JOIN LATERAL json_array_elements(CASE WHEN "
        "json_typeof(w.payload->'cameras') = 'array' THEN w.payload->'cameras' END) AS c "
        "ON true WHERE w.id = ANY(:ids) GROUP BY w.id"),
    "sqlite": sa.text(
        "SELECT w.id, total(json_extract(c.value, '$.inference_fps')), "
        "max(json_extract(c.value, '$.inference_ms.p95')) FROM telemetry_window AS w "
        "LEFT JOIN json_each(CASE WHEN json_type(w.payload, '$.cameras') = 'array' "
        "THEN w.payload END, '$.cameras') AS c WHERE w.id IN "
        "(SELECT value FROM json_each(:ids)) GROUP BY w.id"),
}


def reported_columns(reported: dict[str, Any]) -> dict[str, Any]:
    """The ``Device`` columns that summarise a reported state (its JSON form)."""
    out: dict[str, Any] = {}
    for kind in ("active", "shadow"):
        part = reported.get(kind) or {}
        out[f"{kind}_release_id"] = part.get("release_id")
        out[f"{kind}_stage"] = part.get("stage")
    states = [c.get("state") for c in reported.get("cameras") or []]
    out["cameras_up"] = sum(s == "up" for s in states)
    out["cameras_not_up"] = len(states) - out["cameras_up"]
    return out


def newest_points(session: Session, limit: int) -> list[WindowPoint]:
    """The newest ``limit`` windows by receipt (indexed), as chart points."""
    w = TelemetryWindowRecord
    rows = session.execute(
        select(w.id, w.device_id, w.window_end)
        .order_by(col(w.received_at).desc(), col(w.id).desc()).limit(limit)
    ).all()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    dialect = session.get_bind().dialect.name
    param = ids if dialect == "postgresql" else json.dumps(ids)
    figures = {i: (fps, p95) for i, fps, p95 in
               session.execute(_POINT_FIGURES[dialect], {"ids": param}).all()}
    return [WindowPoint(device_id=d, window_end=end, inference_fps=float(figures[i][0] or 0.0),
                        latency_p95_ms=None if figures[i][1] is None else float(figures[i][1]))
            for i, d, end in rows]


def fleet_summary(session: Session, *, windows: int) -> FleetSummary:
    d = Device
    keys = (col(d.active_release_id), col(d.active_stage), col(d.shadow_release_id),
            col(d.shadow_stage), col(d.desired_release_id))
    # One pass over the device table: a row per combination of releases and stages (a
    # handful however large the fleet), added up here; five aggregate queries scanned it
    # five times.
    groups = session.execute(
        sa.select(*keys, func.count(), func.sum(sa.case((col(d.online).is_(True), 1), else_=0)),
                  func.sum(d.cameras_up), func.sum(d.cameras_not_up)).group_by(*keys)
    ).all()
    total = online = up = not_up = 0
    running: dict[str, ReleaseCount] = {}
    shadowing: dict[str, ReleaseCount] = {}
    desired: Counter[str] = Counter()
    for active, stage, shadow, shadow_stage, wanted, n, on, cams_up, cams_not_up in groups:
        total, online = total + n, online + int(on or 0)
        up, not_up = up + int(cams_up or 0), not_up + int(cams_not_up or 0)
        for counts, release, release_stage in ((running, active, stage),
                                               (shadowing, shadow, shadow_stage)):
            if release is not None:
                count = counts.setdefault(release, ReleaseCount(release_id=release, devices=0,
                                                                healthy=0))
                count.devices += n
                count.healthy += n if release_stage == "healthy" else 0
        if wanted is not None:
            desired[wanted] += n
    for r in running.values():
        r.desired_by = desired[r.release_id]
    order = lambda r: (-r.devices, r.release_id)  # noqa: E731 - most devices first
    return FleetSummary(devices=total, online=online, cameras_up=up, cameras_not_up=not_up,
                        releases=sorted(running.values(), key=order),
                        shadows=sorted(shadowing.values(), key=order),
                        windows=newest_points(session, windows))
