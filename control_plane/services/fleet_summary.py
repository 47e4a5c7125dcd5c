"""The fleet page's figures, counted by the store: its answer does not grow with the fleet.

Listing every device to count them in the browser cost the dashboard seconds at 10,000
devices (bench/fleet_scale.py); here the figures come from one aggregate query over
columns that ingest writes beside each reported state (``reported_columns``), and the
charts read the two numbers they draw from columns ingest writes beside each window
(``chart_figures``): reading them out of the windows' JSON was most of the call.
The API keeps the device figures for a few seconds (``api/fleet_counts.py``); the
windows are read at each request.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from ..schemas import FleetSummary, ReleaseCount, WindowPoint
from ..store.models import Device, TelemetryWindowRecord


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


def chart_figures(payload: dict[str, Any]) -> dict[str, Any]:
    """A window's ``TelemetryWindowRecord`` chart columns, from its JSON form: frames
    inferred per second summed over its cameras, and the worst camera's p95 latency."""
    cams = payload.get("cameras")
    cams = [c for c in cams if isinstance(c, dict)] if isinstance(cams, list) else []
    p95s = [float(c["inference_ms"]["p95"]) for c in cams
            if isinstance(c.get("inference_ms"), dict)
            and c["inference_ms"].get("p95") is not None]
    return {"inference_fps": float(sum(float(c.get("inference_fps") or 0.0) for c in cams)),
            "latency_p95_ms": max(p95s) if p95s else None}


def newest_points(session: Session, limit: int) -> list[WindowPoint]:
    """The newest ``limit`` windows by receipt (indexed), as chart points: columns written
    at ingest, so no payload is read."""
    w = TelemetryWindowRecord
    rows = session.execute(
        select(w.device_id, w.window_end, w.inference_fps, w.latency_p95_ms)
        .order_by(col(w.received_at).desc(), col(w.id).desc()).limit(limit)
    ).all()
    return [WindowPoint(device_id=d, window_end=end, inference_fps=fps, latency_p95_ms=p95)
            for d, end, fps, p95 in rows]


@dataclass(frozen=True)
class FleetCounts:
    """The device figures of the fleet page, as counted at ``counted_at``."""

    devices: int
    online: int
    cameras_up: int
    cameras_not_up: int
    releases: tuple[ReleaseCount, ...]
    shadows: tuple[ReleaseCount, ...]
    counted_at: datetime


def fleet_counts(session: Session) -> FleetCounts:
    """Count the fleet now: one pass over the device table."""
    d = Device
    keys = (col(d.active_release_id), col(d.active_stage), col(d.shadow_release_id),
            col(d.shadow_stage), col(d.desired_release_id))
    counted_at = datetime.now(UTC)
    # A row per combination of releases and stages (a handful however large the fleet),
    # added up here; five aggregate queries scanned the table five times.
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
    return FleetCounts(devices=total, online=online, cameras_up=up, cameras_not_up=not_up,
                       releases=tuple(sorted(running.values(), key=order)),
                       shadows=tuple(sorted(shadowing.values(), key=order)),
                       counted_at=counted_at)


def fleet_summary(session: Session, *, windows: int,
                  counts: FleetCounts | None = None) -> FleetSummary:
    """The fleet page: ``counts`` (counted now when None) and the newest ``windows``."""
    counts = fleet_counts(session) if counts is None else counts
    age = max(0.0, (datetime.now(UTC) - counts.counted_at).total_seconds())
    return FleetSummary(devices=counts.devices, online=counts.online,
                        cameras_up=counts.cameras_up, cameras_not_up=counts.cameras_not_up,
                        releases=[r.model_copy() for r in counts.releases],
                        shadows=[r.model_copy() for r in counts.shadows],
                        windows=newest_points(session, windows),
                        counted_at=counts.counted_at, counts_age_s=round(age, 3))
