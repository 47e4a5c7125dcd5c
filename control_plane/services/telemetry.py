"""Ingest of telemetry windows and device events: idempotent on (device_id, seq).

A duplicate (a re-sent window after a reconnect) is counted, not an error; a
message from a device that was never provisioned is logged and dropped.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from protocols import DeviceEvent, TelemetryWindow

from ..db import insert_ignore
from ..models import EventRecord, TelemetryWindowRecord, utc_now
from . import devices

log = logging.getLogger(__name__)

IngestOutcome = Literal["stored", "duplicate", "unknown_device"]


def ingest_window(session: Session, window: TelemetryWindow) -> IngestOutcome:
    if not devices.touch(session, window.device_id):
        log.warning("telemetry from unknown device dropped", extra={"seq": window.seq})
        return "unknown_device"
    stored = insert_ignore(
        session,
        TelemetryWindowRecord,
        {
            "device_id": window.device_id,
            "seq": window.seq,
            "window_start": window.window_start,
            "window_end": window.window_end,
            "release_id": window.release_id,
            "received_at": utc_now(),
            "payload": window.model_dump(mode="json", by_alias=True),
        },
    )
    if not stored:
        log.info("duplicate telemetry window ignored", extra={"seq": window.seq})
    return "stored" if stored else "duplicate"


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
