"""Each device's latest N windows in a range, read raw, newest first, in slices of receipt
time that widen until N are found, and binned on the release's profile as they are read
(or read as ingest binned them): the per-window verdicts, the hour check and the learning
of baselines judge these."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic_core import from_json
from sqlmodel import Session, col

from ..store.models import TelemetryWindowRecord
from . import stored_rows
from .baseline import camera_key
from .device_windows import DeviceWindows, FlatRows, Rows, binned, rows_of

# Devices per query of their latest windows: each query by receipt time reads the whole
# slice (``recent_slice``), so a chunk of devices is one query, not several.
RECENT_BATCH = 1000


def recent_slice(lo: datetime, hi: datetime, device_ids: list[str]) -> list[sa.ColumnElement[bool]]:
    """The WHERE clause of these devices' windows received in (lo, hi], served by the
    receipt-time index (``ix_telemetry_received``). The device is compared as an expression
    (``device_id || ''``), not as the column: given ``device_id IN (...)``, SQLite's
    planner took ``ix_telemetry_device_start`` and read every window each device has kept
    (1,440 a day each) to find the slice's ten, which was half of a 1,000-device report."""
    t = TelemetryWindowRecord
    return [col(t.received_at) > lo, col(t.received_at) <= hi,
            col(t.device_id).op("||")("").in_(device_ids)]


def first_slice(start: datetime, end: datetime, n: int) -> tuple[datetime, datetime]:
    """The receipt times (lo, hi] of ``read_recent``'s first slice: ``n`` one-minute windows
    twice over, so most devices need no other (10 minutes left the class mix's 15 to a
    second query)."""
    return max(start, end - timedelta(minutes=max(10, 2 * n))), end


def slice_ids(session: Session, start: datetime, end: datetime, release_id: str | None,
              n: int) -> dict[str, list[int]]:
    """Each device's window ids in ``first_slice`` (of ``release_id`` when given), read in
    one pass for a whole fleet: by receipt time, every chunk's query would read the whole
    fleet's slice again (ten times at 10,000 devices). The database gathers each device's
    ids into one array (JSON text on SQLite), so a row comes back per device, not per
    window: fetching and sorting 300,000 rows into lists was most of the pass."""
    t = TelemetryWindowRecord
    lo, hi = first_slice(start, end, n)
    pg = session.get_bind().dialect.name == "postgresql"
    # The expression, not the column: grouped by the column, SQLite's planner would take
    # the device index and read every window each device has kept (``recent_slice``).
    device = col(t.device_id).op("||")("")
    ids = sa.func.array_agg(col(t.id)) if pg else sa.func.json_group_array(col(t.id))
    query = sa.select(device, ids).where(col(t.received_at) > lo, col(t.received_at) <= hi)
    if release_id is not None:
        query = query.where(col(t.release_id) == release_id)
    query = query.group_by(device)
    return {device_id: list(got) if pg else from_json(got)
            for device_id, got in rows_of(session, query)}


def by_ids(session: Session, ids: list[int]) -> sa.ColumnElement[bool]:
    """The WHERE clause of the windows with these ids, the ids as ONE bound value (a JSON
    array on SQLite, an array on PostgreSQL): as ``IN (...)``, SQLAlchemy rendered a
    placeholder per id on every execution, 150,000 of them at 10,000 devices, which cost
    a third of reading the latest windows."""
    t = TelemetryWindowRecord
    if session.get_bind().dialect.name == "postgresql":
        return col(t.id) == sa.any_(sa.bindparam("ids", ids, type_=sa.ARRAY(sa.BigInteger)))
    listed: sa.Select[int] = sa.select(sa.column("value", sa.Integer)).select_from(
        sa.func.json_each(sa.bindparam("ids", json.dumps(ids), type_=sa.Text)))
    return col(t.id).in_(listed.scalar_subquery())


def read_recent(session: Session, devices: dict[tuple[str, str], DeviceWindows],
                start: datetime, end: datetime, release_id: str | None, n: int,
                first: dict[str, list[int]] | None = None, *, stored: bool = False) -> None:
    """Fill ``recent`` and ``recent_rows`` of these (release, device)s: each one's latest
    ``n`` windows in (start, end] that fit its release's bins, oldest first, read newest
    first in slices of receipt time, each four times the last, for the devices that still
    lack some (``first``: ``slice_ids`` of the first slice, when the caller has them; its
    windows are then read by id). What one device gets does not depend on which others are
    read with it, so an analysis reads them a chunk of devices at a time.

    ``stored``: a window binned at ingest is read from its drift columns
    (``stored_rows``), not its JSON: its ``recent`` entry then holds its cameras without
    the crop histograms, which its rows hold (what ``fleet`` and ``fleet_verdicts``
    read); otherwise every window's whole JSON."""
    # Per (release, device): the windows read, newest first, and its rows' width.
    got: dict[tuple[str, str], tuple[list[tuple[dict[str, Any], Rows | FlatRows]], int]] = {
        k: ([], dev.summary.flat.size) for k, dev in devices.items()}
    decode = stored_rows.decode
    t = TelemetryWindowRecord
    lo, hi = first_slice(start, end, n)
    step = hi - lo
    text = sa.cast(col(t.payload), sa.Text)
    columns = ((col(t.drift_rows), col(t.drift_cameras),
                sa.case((col(t.drift_rows).is_(None), text))) if stored
               else (sa.null(), sa.null(), text))
    while got and hi > start:
        lacking = sorted({d for (_, d), (ws, _) in got.items() if len(ws) < n})
        if first is not None and hi == end:
            wheres = [[by_ids(session, sorted(i for d in lacking for i in first.get(d, [])))]]
        else:
            wheres = [recent_slice(lo, hi, lacking[i : i + RECENT_BATCH])
                      for i in range(0, len(lacking), RECENT_BATCH)]
        for where in wheres:
            query = (
                sa.select(col(t.release_id), col(t.device_id), *columns)
                .where(*where)
                .order_by(col(t.device_id), col(t.received_at).desc(), col(t.seq).desc())
            )
            if release_id is not None:
                query = query.where(col(t.release_id) == release_id)
            for rel, device_id, data, cameras, payload_text in rows_of(session, query):
                slot = got.get((rel, device_id))
                if slot is None or len(slot[0]) >= n:
                    continue
                ws, size = slot
                if data is not None:
                    mine = from_json(cameras)
                    flat = decode(data)
                    # Binned on the release's profile, which never changes: always fits.
                    if flat.size == len(mine) * size:
                        ws.append(({"cameras": mine}, flat))
                    continue
                payload = from_json(payload_text)
                rows = binned(devices[(rel, device_id)].summary, payload)
                if rows is not None:
                    ws.append((payload, rows))
        step = step * 4
        hi, lo = lo, max(start, lo - step)
        if all(len(ws) >= n for ws, _ in got.values()):
            break
    for key, (ws, _) in got.items():
        ws.reverse()
        dev = devices[key]
        dev.recent.clear()
        dev.recent.extend(payload for payload, _ in ws)
        dev.recent_rows = [rows for _, rows in ws]
        dev.recent_keys = [[camera_key(c) for c in payload.get("cameras") or []]
                           for payload, _ in ws]


__all__ = ["RECENT_BATCH", "by_ids", "first_slice", "read_recent", "recent_slice", "slice_ids"]
