"""The windows a camera × condition still learning its baseline has collected so far
(table ``drift_baseline_pool``), kept across analyses.

A baseline used to be learned from the device's latest ``8 × baseline_windows`` windows
only, so a condition rarer than 1 window in 8 (a 40-minute dusk, a rain shower) never got
one, and raw windows are merged by retention after two days anyway. Each analysis that
sees a learning camera × condition adds the windows of it that arrived since its last
(``learning``), and the baseline is learned from them once ``baseline_windows`` are here,
over as many days as it takes; its rows are deleted then, or when the device leaves the
release (``unlearned.drop_superseded``). A key holds at most ``baseline_windows`` rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic_core import from_json, to_json
from sqlmodel import Session, col, func

from ..store.among import among
from ..store.models import DriftBaselinePool, TelemetryWindowRecord
from .baseline import camera_key, window_minutes

Key = tuple[str, str]  # (camera id, condition)
# (telemetry window id, its receipt time, the camera's part of it with ``window_minutes``)
Entry = tuple[int, datetime, dict[str, Any]]


@dataclass
class Held:
    """What the pool holds of one key, without the windows themselves: how many, the
    first and last receipt, and the highest window id (a window received at ``last``
    with an id at most that is held already: a batch is received at one time)."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    last_id: int = 0


def held(session: Session, release_id: str, device_ids: list[str]
         ) -> dict[str, dict[Key, Held]]:
    """Per device, per key it holds windows of (one aggregate query per 500 devices: a
    chunk's learning devices at once)."""
    p = DriftBaselinePool
    out: dict[str, dict[Key, Held]] = defaultdict(dict)
    for i in range(0, len(device_ids), 500):
        rows = session.execute(
            sa.select(col(p.device_id), col(p.camera_id), col(p.condition), func.count(),
                      func.min(p.received_at), func.max(p.received_at),
                      func.max(p.window_id))
            .where(col(p.release_id) == release_id,
                   among(session, col(p.device_id), device_ids[i : i + 500]))
            .group_by(col(p.device_id), col(p.camera_id), col(p.condition)))
        for device_id, camera_id, condition, count, first, last, last_id in rows:
            out[device_id][(camera_id, condition)] = Held(
                int(count), first, last, int(last_id))
    return out


def read_new(session: Session, device_id: str, release_id: str, missing: set[Key],
             resets: dict[Key, datetime | None], pooled: dict[Key, Held], limit: int
             ) -> dict[Key, list[Entry]]:
    """Per key of ``missing``, its windows received after its last reset and not pooled
    yet, oldest first, from the device's latest ``limit`` windows of the release.

    A key with windows pooled reads only those since its last (a minute's at each
    analysis); one seen first reads the device's latest ``limit``, a condition seen only
    lately (the first night) among them."""
    since = [_later(resets.get(k), pooled[k].last if k in pooled else None) for k in missing]
    out: dict[Key, list[Entry]] = {}
    for window_id, received_at, text in _read(session, device_id, release_id, since, limit):
        payload = from_json(text)
        minutes = window_minutes(payload)
        for camera in payload.get("cameras") or []:
            key = camera_key(camera)
            if key not in missing:
                continue
            reset, have = resets.get(key), pooled.get(key)
            if ((reset is not None and received_at <= reset) or (
                    have is not None and have.last is not None and (received_at, window_id)
                    <= (have.last, have.last_id))):
                continue
            out.setdefault(key, []).append(
                (window_id, received_at, {**camera, "window_minutes": minutes}))
    return out


def _later(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


def _read(session: Session, device_id: str, release_id: str, since: list[datetime | None],
          limit: int) -> list[tuple[int, datetime, str]]:
    """A device's latest ``limit`` windows of a release (received at or after the oldest
    of ``since``, if each key has one), oldest first: (id, receipt time, JSON)."""
    t = TelemetryWindowRecord
    query = (
        sa.select(col(t.id), col(t.received_at), sa.cast(col(t.payload), sa.Text))
        .where(col(t.device_id) == device_id, col(t.release_id) == release_id)
        .order_by(col(t.seq).desc())
        .limit(limit)
    )
    if all(s is not None for s in since):
        query = query.where(col(t.received_at) >= min(s for s in since if s is not None))
    return [(int(i), r, text) for i, r, text in reversed(list(session.execute(query)))]


def add(session: Session, device_id: str, release_id: str, key: Key, entries: list[Entry]
        ) -> None:
    """Keep these windows of ``key`` (not held yet) for its baseline."""
    if not entries:
        return
    # One executemany, not ORM objects: a fleet's first analysis pools thousands of keys.
    session.execute(sa.insert(DriftBaselinePool), [
        {"device_id": device_id, "release_id": release_id, "camera_id": key[0],
         "condition": key[1], "window_id": window_id, "received_at": received_at,
         "camera": to_json(camera).decode()}
        for window_id, received_at, camera in entries])


def entries(session: Session, device_id: str, release_id: str, key: Key) -> list[Entry]:
    """The windows held of ``key``, oldest first."""
    p = DriftBaselinePool
    rows = session.execute(
        sa.select(col(p.window_id), col(p.received_at), col(p.camera))
        .where(*_of(device_id, release_id, key))
        .order_by(col(p.received_at), col(p.window_id)))
    return [(int(i), at, from_json(text)) for i, at, text in rows]


def drop(session: Session, device_id: str, release_id: str, key: Key,
         ids: set[int] | None = None) -> None:
    """Delete ``key``'s windows (only ``ids``, if given)."""
    p = DriftBaselinePool
    where = _of(device_id, release_id, key)
    if ids is None:
        session.execute(sa.delete(p).where(*where))
        return
    wanted = sorted(ids)
    for i in range(0, len(wanted), 500):
        session.execute(sa.delete(p).where(*where,
                                           col(p.window_id).in_(wanted[i : i + 500])))


def drop_releases(session: Session, pairs: list[tuple[str, str]]) -> None:
    """Delete the windows of these (device, release) pairs."""
    p = DriftBaselinePool
    for i in range(0, len(pairs), 500):
        session.execute(sa.delete(p).where(
            sa.tuple_(col(p.device_id), col(p.release_id)).in_(pairs[i : i + 500])))


def _of(device_id: str, release_id: str, key: Key) -> list[Any]:
    p = DriftBaselinePool
    return [col(p.device_id) == device_id, col(p.release_id) == release_id,
            col(p.camera_id) == key[0], col(p.condition) == key[1]]


__all__ = ["Entry", "Held", "add", "drop", "drop_releases", "entries", "held", "read_new"]
