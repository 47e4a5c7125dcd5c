"""What devices say over MQTT (status, reported state, events), stored a run at a time.

Ingest hands over a run of consecutive status, reported and event messages (during a
rollout they alternate: each device reports, then sends its ``activated`` event). The
run is judged in memory in arrival order, so a device's later message sees the effect of
its earlier one, and written in the caller's transaction in a fixed handful of
statements whatever its length: one SELECT of the devices' columns, one executemany
UPDATE for statuses and one for reported states (each writes only the columns of its
kind, so a tick writing desired states meanwhile is never overwritten), one UPDATE of
``last_seen`` and one multi-row INSERT of events. No ORM object is loaded or flushed.

A status's order: see :func:`status_supersedes`. A reported state about an older desired
revision than the stored one is stale: neither stored nor passed on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from protocols import DeviceEvent, DeviceStatus, ReportedState

from ..store.among import among
from ..store.models import Device, EventRecord, utc_now
from .fleet_summary import reported_columns

log = logging.getLogger(__name__)
_TABLE: sa.Table = Device.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StatusReceipt:
    """A status as received: a retained copy (replayed when we subscribe) is old news, so
    its ``at`` says nothing about the device's clock now (no skew is measured from it)."""

    status: DeviceStatus
    retained: bool = False


DeviceMessage = StatusReceipt | ReportedState | DeviceEvent
KIND = {StatusReceipt: "status", ReportedState: "reported", DeviceEvent: "events"}


@dataclass(slots=True)
class DeviceRow:
    """What a run reads of one device; the status and report fields move in memory as its
    messages are judged. The desired fields are what the rollout engine reads."""

    device_id: str
    online: bool
    status_session: str | None
    reported_revision: int | None
    reported_epoch: int | None
    desired_revision: int
    desired_rollout_id: str | None
    desired_mode: str | None


@dataclass
class StoredRun:
    """The reported states applied, with their devices, in arrival order (for the rollout
    engine), and how many messages had each (kind, outcome)."""

    reports: list[tuple[DeviceRow, ReportedState]] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


def status_supersedes(status: DeviceStatus, online: bool, stored: str | None) -> bool:
    """Does ``status`` replace the stored state (``online``, from session ``stored``)?

    Same agent process: a later connection wins, and a connection's end (its Will, or
    the offline of a clean stop) is final over its own start. Another process: its
    ``online`` wins (a restart), and an old process's Will cannot end the new one.
    Without sessions on either side (an older agent): arrival order.
    """
    if status.session is None or stored is None:
        return True
    process, _, n = status.session.rpartition("-")
    stored_process, _, stored_n = stored.rpartition("-")
    if process != stored_process:
        return status.state == "online"
    if int(n) != int(stored_n):
        return int(n) > int(stored_n)
    return status.state == "offline" or online


def older_revision(reported: ReportedState, revision: int | None, epoch: int | None) -> bool:
    """Whether ``reported`` is about an older desired state than the stored report's
    (``revision`` of ``epoch``), in (epoch, revision) order: after a store's epoch grows,
    revisions count afresh. The device's ``updated_at`` is never compared: after a
    backward clock step every report would look stale."""
    if reported.desired_revision is None or revision is None:
        return False
    return (reported.desired_epoch or 0, reported.desired_revision) < (epoch or 0, revision)


def store_run(session: Session, messages: Sequence[DeviceMessage]) -> StoredRun:
    """Store a run of statuses, reported states and events (the caller commits)."""
    run = StoredRun()
    now = utc_now()
    rows = _read(session, {m.status.device_id if isinstance(m, StatusReceipt) else m.device_id
                           for m in messages})
    statuses: dict[str, dict[str, Any]] = {}
    reports: dict[str, dict[str, Any]] = {}
    versions: dict[str, str] = {}  # the agent version each device told last, in arrival order
    seen: set[str] = set()
    events: list[DeviceEvent] = []
    for message in messages:
        kind = KIND[type(message)]
        if isinstance(message, StatusReceipt):
            device_id = message.status.device_id
        else:
            device_id = message.device_id
        row = rows.get(device_id)
        if row is None:
            run.outcomes[kind, "unknown_device"] += 1
            continue
        if isinstance(message, DeviceEvent):
            events.append(message)
            seen.add(device_id)
        elif isinstance(message, StatusReceipt):
            if _status(row, message, now, statuses, versions):
                seen.add(device_id)
            run.outcomes[kind, "applied"] += 1
        elif older_revision(message, row.reported_revision, row.reported_epoch):
            log.info("stale reported state ignored",
                     extra={"device_id": device_id, "revision": message.desired_revision})
            run.outcomes[kind, "stale"] += 1
        else:
            reports[device_id] = _reported(row, message, now)
            versions[device_id] = message.agent_version
            seen.add(device_id)
            run.reports.append((row, message))
            run.outcomes[kind, "applied"] += 1
    _write(session, statuses, reports, versions)
    # the status and report UPDATEs wrote their devices' last_seen: one row version each
    touch(session, seen - statuses.keys() - reports.keys(), now)
    for outcome, n in store_events(session, events).items():
        run.outcomes["events", outcome] += n
    return run


def _read(session: Session, ids: set[str]) -> dict[str, DeviceRow]:
    """The run's devices, in one query (only the columns judged here), locked until the
    run commits: two ingest workers may hold one device's messages at once (a reconnect's
    Will on one, the new connection's ``online`` on the other), and each must judge its
    own against what the other committed, not against the row as it was before. Locked
    in device order, as ``_write`` updates them (SQLite has one writer: no lock), and FOR
    NO KEY UPDATE: a telemetry batch's window of a locked device checks its foreign key
    meanwhile (KEY SHARE, which FOR UPDATE would block: a deadlock when that batch holds
    a device this run waits for; tests/integration/test_cp_device_locks.py)."""
    if not ids:
        return {}
    t = _TABLE
    rows = session.execute(sa.select(
        t.c.device_id, t.c.online, t.c.status_session,
        _json_int(t.c.reported, "desired_revision"), _json_int(t.c.reported, "desired_epoch"),
        t.c.desired_revision, t.c.desired_rollout_id, t.c.desired_mode,
    ).where(among(session, t.c.device_id, sorted(ids))).order_by(t.c.device_id)
        .with_for_update(of=t, key_share=True)).all()
    return {r[0]: DeviceRow(*r) for r in rows}


def _json_int(column: Any, key: str) -> Any:
    # BIGINT: an epoch is a time in milliseconds, past PostgreSQL's INTEGER
    return sa.cast(column[key].as_string(), sa.BigInteger)


def _status(row: DeviceRow, receipt: StatusReceipt, now: datetime,
            statuses: dict[str, dict[str, Any]], versions: dict[str, str]) -> bool:
    """Judge a status against the device's current one; False when it changes nothing."""
    status = receipt.status
    if not status_supersedes(status, row.online, row.status_session):
        log.info("status of an earlier connection ignored",
                 extra={"device_id": row.device_id, "state": status.state,
                        "session": status.session})
        return False
    row.online, row.status_session = status.state == "online", status.session
    values = statuses.setdefault(row.device_id, {"b_skew": None})
    values.update(b_id=row.device_id, b_online=row.online, b_at=now,
                  b_session=status.session)
    if not receipt.retained and row.online:
        values["b_skew"] = round((status.at - now).total_seconds(), 3)
    if status.agent_version:
        versions[row.device_id] = status.agent_version
    return True


def _reported(row: DeviceRow, reported: ReportedState, now: datetime) -> dict[str, Any]:
    stored = reported.model_dump(mode="json", by_alias=True)
    row.reported_revision = reported.desired_revision
    row.reported_epoch = reported.desired_epoch
    columns = {f"b_{k}": v for k, v in reported_columns(stored).items()}
    # reported_at is our receipt time; the agent's stays in ``reported``
    return {"b_id": row.device_id, "b_reported": stored, "b_at": now, **columns}


def _write(session: Session, statuses: dict[str, dict[str, Any]],
           reports: dict[str, dict[str, Any]], versions: dict[str, str]) -> None:
    """One executemany UPDATE per kind, each device's last values of the run, in device
    order (two ingest workers lock rows in the same order, as the ORM's flush did)."""
    t = _TABLE
    # Both statements write the agent version the device told last, by arrival, and
    # last_seen as ``touch`` does (it only grows), so that no second UPDATE rewrites the row.
    version = sa.func.coalesce(sa.bindparam("b_version", type_=sa.String), t.c.agent_version)
    at = sa.bindparam("b_at", type_=t.c.last_seen.type)
    seen = sa.case((sa.or_(t.c.last_seen.is_(None), t.c.last_seen < at), at),
                   else_=t.c.last_seen)
    where = t.c.device_id == sa.bindparam("b_id")
    if statuses:
        session.execute(sa.update(t).where(where).values(
            online=sa.bindparam("b_online", type_=sa.Boolean),
            status_at=at, last_seen=seen,
            status_session=sa.bindparam("b_session", type_=sa.String),
            clock_skew_s=sa.func.coalesce(sa.bindparam("b_skew", type_=sa.Float),
                                          t.c.clock_skew_s),
            agent_version=version,
        ), [{**statuses[d], "b_version": versions.get(d)} for d in sorted(statuses)])
    if reports:
        columns = {k: sa.bindparam(f"b_{k}", type_=t.c[k].type) for k in reported_columns({})}
        session.execute(sa.update(t).where(where).values(
            reported=sa.bindparam("b_reported", type_=t.c.reported.type),
            reported_at=at, last_seen=seen, agent_version=version, **columns,
        ), [{**reports[d], "b_version": versions.get(d)} for d in sorted(reports)])


def store_events(session: Session, events: Sequence[DeviceEvent]) -> Counter[str]:
    """Events of known devices in one multi-row INSERT ... ON CONFLICT DO NOTHING on
    (device_id, instance, seq): how many were ``stored`` and how many ``duplicate``."""
    if not events:
        return Counter()
    table: sa.Table = EventRecord.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utc_now()
    # one row per key, as the unique index wants
    unique = {(e.device_id, e.instance or "", e.seq): e for e in events}
    rows = [{"device_id": e.device_id, "instance": e.instance or "", "seq": e.seq,
             "kind": e.kind, "at": e.at, "release_id": e.release_id, "received_at": now,
             "payload": e.model_dump(mode="json", by_alias=True)} for e in unique.values()]
    # A list of rows, not .values(rows): SQLAlchemy's "insertmanyvalues" sends multi-row
    # VALUES from one cached compilation (a statement built with the rows in it is
    # compiled afresh for every run).
    stmt = insert(table).on_conflict_do_nothing().returning(table.c.id)
    stored = len(session.execute(stmt, rows).all())
    return +Counter(stored=stored, duplicate=len(events) - stored)


def touch(session: Session, device_ids: set[str], now: datetime | None = None) -> None:
    """Mark known devices as seen at ``now``, in one statement (``last_seen`` only grows)."""
    if not device_ids:
        return
    now = now or utc_now()
    last_seen = _TABLE.c.last_seen
    session.execute(
        sa.update(_TABLE)
        .where(among(session, _TABLE.c.device_id, sorted(device_ids)),
               sa.or_(last_seen.is_(None), last_seen < now))
        .values(last_seen=now)
    )


__all__ = ["DeviceMessage", "DeviceRow", "StatusReceipt", "StoredRun", "older_revision",
           "status_supersedes", "store_events", "store_run", "touch"]
