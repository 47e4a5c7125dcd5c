"""Ingest of telemetry windows and device events: idempotent on (device_id, instance, seq).

``instance`` is the agent outbox's id (''  for agents older than it): a re-imaged agent
numbers from 0 again under a new one, so its windows are never taken for copies. A
duplicate (a re-sent window after a reconnect) is counted, not an error; a message
from a device that was never provisioned is logged and dropped.

Refused, counted in ``parkwatch_cp_ingest_total{outcome}`` and logged once per batch:
- ``implausible``: a window that ends before it starts, or ends more than
  ``MAX_AHEAD`` after its receipt (a clock years off: its times mean nothing);
- ``expired``: a window at or below its instance's merged watermark (retention has
  merged that period, and adding it could count a re-sent window twice).

Late and out-of-order windows (an agent's outbox drains after an outage) are stored
like any other and counted by arrival (``parkwatch_cp_ingest_windows_total``).
``received_at`` (this clock) is what analysis and retention select and age by; the
agent's times are kept as information. ``parkwatch_cp_ingest_lag_seconds`` (receipt
minus window end) is the back-pressure signal: it grows when ingest falls behind the
fleet. ``ingest_windows`` writes a batch in one transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import sqlalchemy as sa
from prometheus_client import Counter as MetricCounter
from prometheus_client import Histogram as MetricHistogram
from sqlalchemy import func
from sqlalchemy.dialects import sqlite
from sqlmodel import Session, col, select

from protocols import DeviceEvent, TelemetryWindow

from ..store.db import insert_ignore
from ..store.models import Device, EventRecord, TelemetryWindowRecord, utc_now
from . import device_messages, devices, telemetry_binning, telemetry_pg, telemetry_rollups
from .fleet_summary import chart_figures
from .telemetry_pg import Key, KeyState
from .telemetry_retention import watermarks

log = logging.getLogger(__name__)

IngestOutcome = Literal["stored", "duplicate", "unknown_device", "expired", "implausible"]
LATE_AFTER = timedelta(minutes=5)  # a window received this long after its end is "late"
# A window ending further ahead of its receipt comes from a clock that is wrong by more
# than any drift of a cheap clock (agents 10 minutes fast are normal and accepted).
MAX_AHEAD = timedelta(days=1)

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
    payload = window.model_dump(mode="json", by_alias=True)
    return {
        "device_id": window.device_id,
        "instance": window.instance or "",
        "seq": window.seq,
        "window_start": window.window_start,
        "window_end": window.window_end,
        "release_id": window.release_id,
        "received_at": now,
        "payload": payload,
        **chart_figures(payload),
    }


def _rollup_row(window: TelemetryWindow, now: datetime, counted: dict[str, Any]
                ) -> dict[str, Any]:
    """What the rollups read of a window stored on PostgreSQL (where the insert sends the
    payload as JSON text): its cameras' counts taken from the model. Dumping the model to
    a dict, or parsing the JSON back, cost the writer as much as the rest of the batch."""
    return {"device_id": window.device_id, "release_id": window.release_id,
            "received_at": now, "window_start": window.window_start,
            "window_end": window.window_end, "payload": counted}


def _lookup(session: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], KeyState]:
    """SQLite: what ``telemetry_pg.lookup`` gives in one statement, in three (SQLite has no
    round trips to save)."""
    marks = watermarks(session, keys)
    ids = sorted({d for d, _ in keys})
    known = set(session.exec(select(Device.device_id).where(col(Device.device_id).in_(ids))))
    t = TelemetryWindowRecord
    highest = {(d, i): int(m) for d, i, m in session.exec(
        select(t.device_id, t.instance, func.max(t.seq))
        .where(col(t.device_id).in_(ids))
        .group_by(col(t.device_id), col(t.instance))
    ).all() if m is not None}
    return {k: KeyState(k[0] in known, marks.get(k), highest.get(k)) for k in keys}


def _arrival(window: TelemetryWindow, highest: int | None, now: datetime) -> str:
    lag = (now - window.window_end).total_seconds()
    INGEST_LAG.observe(max(lag, 0.0))
    if highest is not None and window.seq < highest:
        return "out_of_order"
    return "late" if lag > LATE_AFTER.total_seconds() else "in_order"


def implausible(window: TelemetryWindow, now: datetime) -> str | None:
    """Why the window's times cannot be true, or None."""
    if window.window_end < window.window_start:
        return "ends before it starts"
    if window.window_end > now + MAX_AHEAD:
        return f"ends more than {MAX_AHEAD} after its receipt"
    return None


def _refuse_implausible(
    windows: Sequence[TelemetryWindow], now: datetime
) -> tuple[list[TelemetryWindow], int]:
    kept, refused = [], 0
    for w in windows:
        reason = implausible(w, now)
        if reason is None:
            kept.append(w)
            continue
        refused += 1
        log.warning("telemetry window refused: it %s (check the agent's clock)", reason,
                    extra={"device_id": w.device_id, "seq": w.seq,
                           "window_start": w.window_start.isoformat(),
                           "window_end": w.window_end.isoformat()})
    return kept, refused


def _refuse_merged(
    windows: Sequence[TelemetryWindow], state: dict[tuple[str, str], KeyState]
) -> tuple[list[TelemetryWindow], int]:
    kept: list[TelemetryWindow] = []
    refused: list[TelemetryWindow] = []
    for w in windows:
        mark = state[(w.device_id, w.instance or "")].merged_seq
        (kept if mark is None or w.seq > mark else refused).append(w)
    if refused:
        log.warning("telemetry windows of a period retention already merged refused (their "
                    "seq is at or below the merged watermark)",
                    extra={"count": len(refused),
                           "device_ids": sorted({w.device_id for w in refused})[:10]})
    return kept, len(refused)


def ingest_window(
    session: Session, window: TelemetryWindow, *, received_at: datetime | None = None
) -> IngestOutcome:
    """Store one window (the caller commits); see ``ingest_windows``."""
    outcomes = ingest_windows(session, [window], received_at=received_at)
    return cast(IngestOutcome, next(iter(outcomes)))


def ingest_windows(
    session: Session, windows: Sequence[TelemetryWindow], *,
    received_at: datetime | None = None,
) -> Counter[str]:
    """Store a batch with multi-row INSERT ... ON CONFLICT DO NOTHING (the caller commits);
    returns how many windows had each ``IngestOutcome``. ``received_at``: the receipt time
    (default now; a test or replay simulating time passes its own)."""
    now = received_at or utc_now()
    outcomes: Counter[str] = Counter()
    plausible, outcomes["implausible"] = _refuse_implausible(windows, now)
    if not plausible:
        return +outcomes
    postgres = session.get_bind().dialect.name == "postgresql"
    keys = {(w.device_id, w.instance or "") for w in plausible}
    state = telemetry_pg.lookup(session, keys) if postgres else _lookup(session, keys)
    fresh, outcomes["expired"] = _refuse_merged(plausible, state)
    accepted = [w for w in fresh if state[(w.device_id, w.instance or "")].known]
    outcomes["unknown_device"] = len(fresh) - len(accepted)
    if accepted:
        stored = _insert(session, accepted, state, now, postgres=postgres)
        outcomes["stored"] = stored
        outcomes["duplicate"] = len(accepted) - stored
        if outcomes["duplicate"]:
            log.info("duplicate telemetry windows ignored (re-sent)",
                     extra={"count": outcomes["duplicate"]})
    return +outcomes


def _insert(session: Session, accepted: Sequence[TelemetryWindow],
            state: dict[tuple[str, str], KeyState], now: datetime, *, postgres: bool) -> int:
    """Insert what is new, touch its devices and add it into the rollups; returns how many
    windows were stored."""
    rows: list[dict[str, Any]] = []
    counted_ = ([telemetry_binning.counted(w) for w in accepted] if postgres else [])
    if postgres:
        done = telemetry_binning.binned(
            session, [(w.release_id, c) for w, c in zip(accepted, counted_, strict=True)])
        stored_keys = telemetry_pg.insert(session, accepted, now, done)
    else:
        rows = [_row(w, now) for w in accepted]
        done = telemetry_binning.binned(session, [(r["release_id"], r["payload"]) for r in rows])
        for r, b in zip(rows, done, strict=True):
            r.update(b.columns)
        devices.touch_many(session, {w.device_id for w in accepted})
        # One statement with a list of rows: SQLAlchemy's "insertmanyvalues" sends
        # multi-row VALUES pages from one cached compilation.
        stmt = (
            sqlite.insert(_TABLE)
            .on_conflict_do_nothing()
            .returning(_TABLE.c.device_id, _TABLE.c.instance, _TABLE.c.seq)
        )
        stored_keys = {(d, n, int(q)) for d, n, q in session.execute(stmt, rows).all()}
    counted: set[Key] = set()
    stored_rows = []
    flats = []
    arrivals: Counter[str] = Counter()  # one increment per label and batch
    for i, w in enumerate(accepted):
        # a window sent twice in one batch is stored, counted and rolled up once
        key = (w.device_id, w.instance or "", w.seq)
        if key in stored_keys and key not in counted:
            counted.add(key)
            stored_rows.append(rows[i] if rows else _rollup_row(w, now, counted_[i]))
            flats.append(done[i].flat)
            arrivals[_arrival(w, state[key[:2]].highest, now)] += 1
    for arrival, n in arrivals.items():
        ARRIVALS.labels(arrival).inc(n)
    telemetry_rollups.add(session, stored_rows, flats)
    return len(stored_keys)


_TABLE: sa.Table = TelemetryWindowRecord.__table__  # type: ignore[attr-defined]


def ingest_event(session: Session, event: DeviceEvent) -> IngestOutcome:
    if not devices.touch(session, event.device_id):
        log.warning("event from unknown device dropped", extra={"seq": event.seq})
        return "unknown_device"
    stored = insert_ignore(
        session,
        EventRecord,
        {
            "device_id": event.device_id,
            "instance": event.instance or "",
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
    known = devices.touch_many(session, {e.device_id for e in events})
    accepted = [e for e in events if e.device_id in known]
    outcomes = device_messages.store_events(session, accepted)
    outcomes["unknown_device"] = len(events) - len(accepted)
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
