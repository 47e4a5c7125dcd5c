"""Ingest of telemetry windows and device events: idempotent on (device_id, seq).

A duplicate (a re-sent window after a reconnect) is counted, not an error; a
message from a device that was never provisioned is logged and dropped.

Late and out-of-order windows (an agent's outbox drains after an outage) are
stored like any other and counted by arrival (``parkwatch_cp_ingest_windows_total``);
drift analysis orders a device's windows by seq, not by arrival. A window that ends
before the retention horizon (its period is already downsampled) is refused as
``expired``: adding it to a merged window could count a re-sent window twice.
``parkwatch_cp_ingest_lag_seconds`` (receipt minus window end) is the back-pressure
signal: it grows when ingest falls behind the fleet. ``ingest_windows`` writes a
batch in one transaction (one commit instead of one per window).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from prometheus_client import Counter as MetricCounter
from prometheus_client import Histogram as MetricHistogram
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from protocols import DeviceEvent, TelemetryWindow

from ..store.db import insert_ignore
from ..store.models import EventRecord, TelemetryWindowRecord, utc_now
from . import devices

log = logging.getLogger(__name__)

IngestOutcome = Literal["stored", "duplicate", "unknown_device", "expired"]
LATE_AFTER = timedelta(minutes=5)  # a window received this long after its end is "late"
BATCH_ROWS = 500  # rows per multi-row INSERT (SQLite allows 32,766 bound values)

INGEST_LAG = MetricHistogram(
    "parkwatch_cp_ingest_lag_seconds",
    "Receipt time minus window end of stored telemetry windows; grows when ingest falls "
    "behind (back-pressure) or agents drain an outbox after an outage.",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 24 * 3600),
)
ARRIVALS = MetricCounter(
    "parkwatch_cp_ingest_windows_total",
    "Stored telemetry windows by arrival: in_order, out_of_order (seq below the device's "
    "highest stored seq) or late (received over 5 minutes after the window ended).",
    ["arrival"],
)


def _row(window: TelemetryWindow, now: datetime) -> dict[str, Any]:
    return {
        "device_id": window.device_id,
        "seq": window.seq,
        "window_start": window.window_start,
        "window_end": window.window_end,
        "release_id": window.release_id,
        "received_at": now,
        "payload": window.model_dump(mode="json", by_alias=True),
    }


def _max_seqs(session: Session, device_ids: Sequence[str]) -> dict[str, int]:
    rows = session.exec(
        select(TelemetryWindowRecord.device_id, func.max(TelemetryWindowRecord.seq))
        .where(col(TelemetryWindowRecord.device_id).in_(sorted(set(device_ids))))
        .group_by(TelemetryWindowRecord.device_id)
    ).all()
    return {d: int(m) for d, m in rows if m is not None}


def _count_arrival(window: TelemetryWindow, highest: int | None, now: datetime) -> None:
    lag = (now - window.window_end).total_seconds()
    INGEST_LAG.observe(max(lag, 0.0))
    if highest is not None and window.seq < highest:
        ARRIVALS.labels("out_of_order").inc()
    elif lag > LATE_AFTER.total_seconds():
        ARRIVALS.labels("late").inc()
    else:
        ARRIVALS.labels("in_order").inc()


def ingest_window(
    session: Session, window: TelemetryWindow, *, horizon: datetime | None = None
) -> IngestOutcome:
    """Store one window (the caller commits); ``horizon``: refuse windows ending before it."""
    if horizon is not None and window.window_end < horizon:
        log.warning("telemetry window older than the retention horizon refused",
                    extra={"seq": window.seq})
        return "expired"
    if not devices.touch(session, window.device_id):
        log.warning("telemetry from unknown device dropped", extra={"seq": window.seq})
        return "unknown_device"
    now = utc_now()
    highest = _max_seqs(session, [window.device_id]).get(window.device_id)
    stored = insert_ignore(session, TelemetryWindowRecord, _row(window, now))
    if not stored:
        log.info("duplicate telemetry window ignored", extra={"seq": window.seq})
        return "duplicate"
    _count_arrival(window, highest, now)
    return "stored"


def ingest_windows(
    session: Session, windows: Sequence[TelemetryWindow], *, horizon: datetime | None = None
) -> Counter[str]:
    """Store a batch with multi-row INSERT ... ON CONFLICT DO NOTHING (the caller commits);
    returns how many windows had each ``IngestOutcome``."""
    outcomes: Counter[str] = Counter()
    fresh = [w for w in windows if horizon is None or w.window_end >= horizon]
    outcomes["expired"] = len(windows) - len(fresh)
    known = devices.touch_many(session, {w.device_id for w in fresh})
    accepted = [w for w in fresh if w.device_id in known]
    outcomes["unknown_device"] = len(fresh) - len(accepted)
    if not accepted:
        return +outcomes
    now = utc_now()
    highest = _max_seqs(session, [w.device_id for w in accepted])
    table: sa.Table = TelemetryWindowRecord.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stored_keys: set[tuple[str, int]] = set()
    for i in range(0, len(accepted), BATCH_ROWS):
        chunk = accepted[i : i + BATCH_ROWS]
        stmt = (
            insert(table)
            .values([_row(w, now) for w in chunk])
            .on_conflict_do_nothing()
            .returning(table.c.device_id, table.c.seq)
        )
        stored_keys.update((d, int(q)) for d, q in session.execute(stmt).all())
    counted: set[tuple[str, int]] = set()
    for w in accepted:  # a window sent twice in one batch is stored, and counted, once
        key = (w.device_id, w.seq)
        if key in stored_keys and key not in counted:
            counted.add(key)
            _count_arrival(w, highest.get(w.device_id), now)
    outcomes["stored"] = len(stored_keys)
    outcomes["duplicate"] = len(accepted) - len(stored_keys)
    return +outcomes


def ingest_event(session: Session, event: DeviceEvent) -> IngestOutcome:
    if not devices.touch(session, event.device_id):
        log.warning("event from unknown device dropped", extra={"seq": event.seq})
        return "unknown_device"
    stored = insert_ignore(
        session,
        EventRecord,
        {
            "device_id": event.device_id,
            "seq": event.seq,
            "kind": event.kind,
            "at": event.at,
            "release_id": event.release_id,
            "received_at": utc_now(),
            "payload": event.model_dump(mode="json", by_alias=True),
        },
    )
    return "stored" if stored else "duplicate"


def ingest_events(session: Session, events: Sequence[DeviceEvent]) -> Counter[str]:
    """Store a run of events with one multi-row INSERT ... ON CONFLICT DO NOTHING (the
    caller commits); how many had each ``IngestOutcome``."""
    outcomes: Counter[str] = Counter()
    known = devices.touch_many(session, {e.device_id for e in events})
    accepted = [e for e in events if e.device_id in known]
    outcomes["unknown_device"] = len(events) - len(accepted)
    if not accepted:
        return +outcomes
    now = utc_now()
    table: sa.Table = EventRecord.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    unique = {(e.device_id, e.seq): e for e in accepted}  # one row per key, as the index wants
    stmt = (
        insert(table)
        .values([{"device_id": e.device_id, "seq": e.seq, "kind": e.kind, "at": e.at,
                  "release_id": e.release_id, "received_at": now,
                  "payload": e.model_dump(mode="json", by_alias=True)}
                 for e in unique.values()])
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    outcomes["stored"] = len(session.execute(stmt).all())
    outcomes["duplicate"] = len(accepted) - outcomes["stored"]
    return +outcomes


def list_windows(
    session: Session, *, device_id: str | None, limit: int, offset: int
) -> tuple[list[TelemetryWindowRecord], int]:
    """Stored windows, newest first."""
    query = select(TelemetryWindowRecord)
    count = select(func.count()).select_from(TelemetryWindowRecord)
    if device_id is not None:
        query = query.where(TelemetryWindowRecord.device_id == device_id)
        count = count.where(TelemetryWindowRecord.device_id == device_id)
    rows = session.exec(
        query.order_by(
            col(TelemetryWindowRecord.window_start).desc(), col(TelemetryWindowRecord.seq).desc()
        )
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), session.exec(count).one()


def list_events(
    session: Session, *, device_id: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Stored events as their ``DeviceEvent`` JSON, newest first."""
    query = select(EventRecord)
    count = select(func.count()).select_from(EventRecord)
    if device_id is not None:
        query = query.where(EventRecord.device_id == device_id)
        count = count.where(EventRecord.device_id == device_id)
    rows = session.exec(
        query.order_by(col(EventRecord.at).desc(), col(EventRecord.seq).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [r.payload for r in rows], session.exec(count).one()
