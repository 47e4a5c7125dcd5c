"""The park manager's view, per camera: animals in view now, visits per hour, where they went.

Built from what agents already send: ``animal_appeared``/``animal_left`` events (one per
track: an animal followed across frames) and each window's ``animal_heatmap``. Times are
the control plane's receipt times, never the device's clock (a device's clock may be
wrong; docs/architecture.md, "Time"). A visit is counted in the hour its animal appeared,
under the label its track ended with (the vote over all its crops), or the label it
appeared with while it is still in view.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from protocols.messages import HEATMAP_COLS, HEATMAP_ROWS

from ..schemas import AnimalInView, HourCount, ParkCamera, ParkView
from ..store.models import Device, EventRecord, TelemetryWindowRecord, utc_now
from . import snapshots

TRACK_KINDS = ("animal_appeared", "animal_left")
# An announced track with no ``animal_left`` after this long is not shown as in view: the
# agent restarted or the event was lost (an agent ends its tracks when a camera stops).
IN_VIEW_HORIZON = timedelta(minutes=30)
MAX_HOURS = 24 * 7

CameraKey = tuple[str, str]
Row = tuple[str, datetime, Mapping[str, Any]]  # device_id, received_at, payload


@dataclass
class _Track:
    track_id: int
    appeared_at: datetime
    label: str | None
    confidence: float | None
    box: tuple[float, float, float, float] | None
    left: bool = False
    dwell_seconds: float | None = None


@dataclass
class CameraTracks:
    """The tracks of one camera in the range, from its events in receipt order."""

    tracks: list[_Track] = field(default_factory=list)
    _open: dict[int, _Track] = field(default_factory=dict)

    def add(self, kind: str, event: Mapping[str, Any], received_at: datetime) -> None:
        track_id = event.get("track_id")
        if not isinstance(track_id, int):
            return
        if kind == "animal_appeared":
            track = _Track(track_id, received_at, event.get("label"), event.get("confidence"),
                           _box(event.get("box")))
            self.tracks.append(track)
            self._open[track_id] = track  # a reused id (agent restart) replaces the old one
        elif kind == "animal_left":
            ended = self._open.pop(track_id, None)
            if ended is None:  # appeared before the range: not a visit of this range
                return
            ended.left = True
            ended.label = event.get("label") or ended.label
            ended.confidence = event.get("confidence", ended.confidence)
            dwell = event.get("dwell_seconds")
            ended.dwell_seconds = float(dwell) if isinstance(dwell, int | float) else None

    def in_view(self, now: datetime) -> list[AnimalInView]:
        return [
            AnimalInView(track_id=t.track_id, label=t.label, confidence=t.confidence,
                         since=t.appeared_at, box=t.box)
            for t in self._open.values()
            if now - t.appeared_at <= IN_VIEW_HORIZON
        ]

    def hourly(self) -> list[HourCount]:
        hours: dict[datetime, Counter[str]] = defaultdict(Counter)
        for t in self.tracks:
            hour = t.appeared_at.replace(minute=0, second=0, microsecond=0)
            hours[hour][t.label or "unknown"] += 1
        return [HourCount(hour=h, animals=dict(c)) for h, c in sorted(hours.items())]

    def totals(self) -> dict[str, int]:
        return dict(Counter(t.label or "unknown" for t in self.tracks))

    def mean_dwell(self) -> float | None:
        dwells = [t.dwell_seconds for t in self.tracks if t.dwell_seconds is not None]
        return sum(dwells) / len(dwells) if dwells else None


def _box(value: object) -> tuple[float, float, float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 4:
        return (float(value[0]), float(value[1]), float(value[2]), float(value[3]))
    return None


@dataclass
class CameraWindows:
    """What one camera's windows in the range add up to."""

    heatmap: list[int] = field(default_factory=lambda: [0] * (HEATMAP_COLS * HEATMAP_ROWS))
    last_at: datetime | None = None
    condition: str | None = None
    mode: str | None = None

    def add(self, camera: Mapping[str, Any], received_at: datetime) -> None:
        cells = camera.get("animal_heatmap") or []
        if len(cells) == len(self.heatmap):
            self.heatmap = [a + int(b) for a, b in zip(self.heatmap, cells, strict=True)]
        if self.last_at is None or received_at >= self.last_at:
            self.last_at = received_at
            self.condition = camera.get("condition") or self.condition
            self.mode = camera.get("mode") or self.mode


def summarise_events(rows: Iterable[Row]) -> dict[CameraKey, CameraTracks]:
    """(device_id, received_at, event payload) in receipt order -> tracks per camera."""
    out: dict[CameraKey, CameraTracks] = defaultdict(CameraTracks)
    for device_id, received_at, event in rows:
        camera_id, kind = event.get("camera_id"), event.get("kind")
        if isinstance(camera_id, str) and kind in TRACK_KINDS:
            out[(device_id, camera_id)].add(str(kind), event, received_at)
    return out


def summarise_windows(rows: Iterable[Row]) -> dict[CameraKey, CameraWindows]:
    """(device_id, received_at, window payload) -> heat map and newest condition per camera."""
    out: dict[CameraKey, CameraWindows] = defaultdict(CameraWindows)
    for device_id, received_at, window in rows:
        for camera in window.get("cameras") or []:
            camera_id = camera.get("camera_id")
            if isinstance(camera_id, str):
                out[(device_id, camera_id)].add(camera, received_at)
    return out


def _reported_cameras(device: Device) -> dict[str, dict[str, Any]]:
    cameras = (device.reported or {}).get("cameras") or []
    return {c["camera_id"]: c for c in cameras if isinstance(c, dict) and "camera_id" in c}


def park_view(
    session: Session,
    *,
    device_ids: Sequence[str] | None = None,
    hours: int = 24,
    now: datetime | None = None,
) -> ParkView:
    """Every camera of the chosen devices (all when None) over the last ``hours``."""
    until = now or utc_now()
    since = until - timedelta(hours=max(1, min(hours, MAX_HOURS)))
    device_query = select(Device).order_by(col(Device.device_id))
    event_query = (
        select(EventRecord.device_id, EventRecord.received_at, EventRecord.payload)
        .where(col(EventRecord.kind).in_(TRACK_KINDS), col(EventRecord.received_at) >= since)
        .order_by(col(EventRecord.received_at), col(EventRecord.seq))
    )
    window_query = select(
        TelemetryWindowRecord.device_id, TelemetryWindowRecord.received_at,
        TelemetryWindowRecord.payload,
    ).where(col(TelemetryWindowRecord.received_at) >= since)
    if device_ids is not None:
        device_query = device_query.where(col(Device.device_id).in_(device_ids))
        event_query = event_query.where(col(EventRecord.device_id).in_(device_ids))
        window_query = window_query.where(col(TelemetryWindowRecord.device_id).in_(device_ids))
    devices = session.exec(device_query).all()
    tracks = summarise_events(session.exec(event_query).all())
    windows = summarise_windows(session.exec(window_query).all())
    shots = snapshots.latest_by_camera(session, list(device_ids) if device_ids else None)
    cameras: list[ParkCamera] = []
    for device in devices:
        reported = _reported_cameras(device)
        seen = {k[1] for k in (*tracks, *windows, *shots) if k[0] == device.device_id}
        for camera_id in sorted(set(reported) | seen):
            key = (device.device_id, camera_id)
            t = tracks.get(key, CameraTracks())
            w = windows.get(key, CameraWindows())
            status = reported.get(camera_id, {})
            cameras.append(ParkCamera(
                device_id=device.device_id, camera_id=camera_id, online=device.online,
                state=status.get("state"), detail=status.get("detail"),
                mode=w.mode, condition=w.condition, last_window_at=w.last_at,
                in_view=t.in_view(until) if device.online else [],
                hourly=t.hourly(), totals=t.totals(), mean_dwell_seconds=t.mean_dwell(),
                heatmap=w.heatmap, heatmap_cols=HEATMAP_COLS, heatmap_rows=HEATMAP_ROWS,
                snapshot=shots.get(key),
            ))
    return ParkView(since=since, until=until, cameras=cameras)
