"""Reported states into rollout rows, a batch at a time, in a few set-based statements.

Ingest hands over every reported state of one batch of MQTT messages at once. The rows
they concern are read in one query, judged and moved in memory (``report.judge_report``,
``states.move_device``), and written with one ``UPDATE ... WHERE id IN (...)`` per
distinct (old state, new state, detail, revision): at 10,000 devices a batch of a
hundred reports costs a handful of statements, not three ORM round trips per device.

Each UPDATE also says which state and revision it moves from, so a tick that moved or
re-released a row meanwhile (another process) wins and the stale report changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from protocols import ReportedState

from ..store.among import among
from ..store.models import Rollout, RolloutDevice, utc_now
from .report import judge_report
from .states import DEVICE, move_device

log = logging.getLogger(__name__)

class Reporter(Protocol):
    """What the engine reads of a device that reported: a ``Device``, or the plain row
    ingest read it as."""

    @property
    def device_id(self) -> str: ...
    @property
    def desired_rollout_id(self) -> str | None: ...
    @property
    def desired_mode(self) -> str | None: ...
    @property
    def desired_revision(self) -> int: ...


# (state it moves from, state it moves to, detail, revision): one UPDATE per key
_Move = tuple[str, str, str, int]


def record_reports(
    session: Session, reports: Sequence[tuple[Reporter, ReportedState]],
    now: datetime | None = None,
) -> dict[str, str]:
    """Move the rows of the devices' current rollouts from their reported states, in
    arrival order (a later report of the same device sees the earlier one's move).
    Returns the new state of every row that moved, by device id."""
    now = now or utc_now()
    current = {d.device_id: d.desired_rollout_id for d, _ in reports if d.desired_rollout_id}
    if not current:
        return {}
    rows = _rows(session, current)
    releases = dict(session.exec(
        select(Rollout.rollout_id, Rollout.release_id)
        .where(among(session, col(Rollout.rollout_id), sorted(set(current.values()))))
    ).all())
    start = {device_id: (row.id, row.state) for device_id, row in rows.items()}
    acked: set[str] = set()
    with session.no_autoflush:  # the moves are made on the rows, written below in bulk
        for device, reported in reports:
            row = rows.get(device.device_id)
            release_id = releases.get(device.desired_rollout_id or "")
            if row is None or release_id is None:
                continue
            if (reported.desired_revision is not None
                    and reported.desired_revision < row.revision):
                continue  # about an older desired state
            mode = "shadow" if device.desired_mode == "shadow" else "active"
            verdict = judge_report(release_id, mode, reported)
            if verdict is None or not DEVICE.allows(row.state, verdict.event):
                continue
            move_device(row, verdict.event, now, verdict.detail)
            if verdict.event == "acknowledge":
                acked.add(device.device_id)
        moves: dict[str, tuple[_Move, bool]] = {}
        for device_id, row in rows.items():
            if row.state != start[device_id][1]:
                moves[device_id] = ((start[device_id][1], row.state, row.detail or "",
                                     row.revision), device_id in acked)
                session.expire(row)  # its changes go out in the bulk UPDATE, not one by one
    moved = _write(session, {d: i for d, (i, _) in start.items()}, moves, now)
    if moved:
        log.info("rollout devices moved", extra={"count": len(moved)})
    return moved


def _rows(session: Session, current: dict[str, str]) -> dict[str, RolloutDevice]:
    """Each device's row in its current rollout (one query; other rollouts' rows dropped)."""
    found = session.exec(
        select(RolloutDevice).where(
            among(session, col(RolloutDevice.device_id), sorted(current)),
            among(session, col(RolloutDevice.rollout_id), sorted(set(current.values()))),
        )
    ).all()
    return {r.device_id: r for r in found if current.get(r.device_id) == r.rollout_id}


def _write(
    session: Session, ids: dict[str, int | None], moves: dict[str, tuple[_Move, bool]],
    now: datetime,
) -> dict[str, str]:
    groups: dict[tuple[_Move, bool], list[str]] = defaultdict(list)
    for device_id, key in moves.items():
        groups[key].append(device_id)
    moved: dict[str, str] = {}
    table = RolloutDevice.__table__  # type: ignore[attr-defined]
    for ((start, to, detail, revision), acked), device_ids in groups.items():
        values: dict[str, object] = {"state": to, "detail": detail, "updated_at": now}
        if acked:
            values["acked_at"] = now
        row_ids = [ids[d] for d in device_ids]
        result = session.execute(
            sa.update(table)
            .where(among(session, table.c.id, row_ids), table.c.state == start,
                   table.c.revision == revision)
            .values(**values)
        )
        if result.rowcount == len(row_ids):  # type: ignore[attr-defined]
            moved.update(dict.fromkeys(device_ids, to))
        else:  # a tick moved some meanwhile: report only the rows that really moved
            done = session.exec(select(RolloutDevice.device_id).where(
                among(session, col(RolloutDevice.id), row_ids),
                col(RolloutDevice.updated_at) == now,
                col(RolloutDevice.state) == to)).all()
            moved.update(dict.fromkeys(done, to))
    return moved


__all__ = ["Reporter", "record_reports"]
