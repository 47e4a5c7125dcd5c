"""Folding past days' hour rollups into day rows: the job's side of
``services.telemetry_rollups`` (ingest writes hour rows only).

Each pass takes the earliest day before today that has an hour row not folded, and for a
few devices at a time, in one transaction each: marks every hour row of theirs in that
day folded and reads them back in the same statement (``UPDATE ... RETURNING``), adds them
up per (release, camera, condition), and writes the sums over the day rows. The day rows
are rebuilt from all the day's hours, not added to, so folding a day again (after a late
transaction stored a window into one of its hours) is exact.

Why marking and reading is one statement: on PostgreSQL the UPDATE locks the rows it
returns, so an ingest worker adding into one of them waits for the fold to commit and
then marks it unfolded again; on SQLite the UPDATE takes the write lock before the rows
are read. Either way a row marked folded holds exactly what its day row counted, and
a later addition makes readers take that day from its hours until the next pass.

Runs under the drift task's lease (one replica on PostgreSQL; one process on SQLite).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from ..store.models import TelemetryRollup
from .telemetry_rollups import DAY, HOUR, add_counts, floor, unfolded_hours

log = logging.getLogger(__name__)
DEVICES_PER_PASS = 200  # devices whose hours of one day one transaction folds
# A day is folded once this long has passed since it ended: a transaction that stored into
# its last hour has committed by then (one that has not makes the day fold again).
FOLD_AFTER = HOUR
_TABLE: sa.Table = TelemetryRollup.__table__  # type: ignore[attr-defined]
_GROUP = ("release_id", "camera_id", "condition")


@dataclass
class _Day:
    """One (device, release, camera, condition)'s hours of a day, added up."""

    windows: int
    mismatched: int
    first_start: datetime
    last_end: datetime
    counts: list[float]

    def add(self, row: Any) -> None:
        self.windows += row.windows
        self.mismatched += row.mismatched
        self.first_start = min(self.first_start, row.first_start)
        self.last_end = max(self.last_end, row.last_end)
        self.counts = add_counts(self.counts, row.counts)


def _next_day(session: Session, since: datetime, before: datetime) -> datetime | None:
    """The earliest day in [since, before) with an hour not folded into it."""
    r = TelemetryRollup
    found = session.execute(sa.select(sa.func.min(col(r.bucket))).where(
        unfolded_hours(since, before))).scalar()
    return None if found is None else floor(found, DAY)


def _fold_devices(session: Session, day: datetime, device_ids: list[str]) -> int:
    """Rebuild the day rows of ``device_ids`` from all their hours of ``day``; returns how
    many day rows were written. The caller commits."""
    t = _TABLE.c
    hours = session.execute(
        sa.update(_TABLE)
        .where(t.grain == "hour", t.bucket >= day, t.bucket < day + DAY,
               t.device_id.in_(device_ids))
        .values(folded=True)
        .returning(t.device_id, t.release_id, t.camera_id, t.condition, t.windows,
                   t.mismatched, t.first_start, t.last_end, t.counts)
    ).all()
    days: dict[tuple[str, str, str, str], _Day] = {}
    for row in hours:
        key = (row.device_id, row.release_id, row.camera_id, row.condition)
        found = days.get(key)
        if found is None:
            days[key] = _Day(row.windows, row.mismatched, row.first_start, row.last_end,
                             list(row.counts))
        else:
            found.add(row)
    if not days:
        return 0
    values = [{"grain": "day", "bucket": day, "device_id": k[0],
               **dict(zip(_GROUP, k[1:], strict=True)), "windows": d.windows,
               "mismatched": d.mismatched, "first_start": d.first_start,
               "last_end": d.last_end, "counts": d.counts, "folded": True}
              for k, d in sorted(days.items())]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(_TABLE)
    replaced = ("windows", "mismatched", "first_start", "last_end", "counts")
    session.execute(stmt.on_conflict_do_update(
        index_elements=[c.name for c in _TABLE.primary_key.columns],
        set_={c: stmt.excluded[c] for c in replaced}), values)
    return len(values)


def fold(session: Session, now: datetime) -> int:
    """Fold every day that ended ``FOLD_AFTER`` before ``now`` and has hours not folded
    into it; returns how many day rows were written. Commits after each few devices."""
    written = 0
    today = floor(now - FOLD_AFTER, DAY)
    r = TelemetryRollup
    day = _next_day(session, datetime.min.replace(tzinfo=UTC), today)
    while day is not None:
        device_ids = sorted(session.execute(sa.select(col(r.device_id)).where(
            unfolded_hours(day, day + DAY)).distinct()).scalars())
        for i in range(0, len(device_ids), DEVICES_PER_PASS):
            written += _fold_devices(session, day, device_ids[i : i + DEVICES_PER_PASS])
            session.commit()
        # a day stored into again meanwhile is the next pass's (no pass loops on one day)
        day = _next_day(session, day + DAY, today)
    if written:
        log.info("rollup days folded", extra={"day_rows": written})
    return written


__all__ = ["DEVICES_PER_PASS", "FOLD_AFTER", "fold"]
