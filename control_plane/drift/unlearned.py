"""Why a camera × condition has no production baseline yet: the latest attempt to learn
one, per (device, camera, condition, release), in table ``drift_baseline_attempt``.

``learning.learn_missing`` records every attempt that made no baseline (the release not
healthy on the device, too few windows, too few with enough crops, a fit that raised)
with a one-line message that names the fix, removes a key's row once its baseline is
learned, and those of a release its device no longer runs (``drop_superseded``), so the
table holds the cameras still learning under the release they run and nothing else (and
their pooled windows, ``baseline_pool``, go with them). The API, the
CLI (``parkwatch drift learning``) and the dashboard's drift page show them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func, select

from ..store.models import Device, DriftBaselineAttempt, utc_now
from . import baseline_pool

Reason = Literal["release_not_healthy", "too_few_windows", "too_few_busy_windows",
                 "fit_failed"]
KeyOf = tuple[str, str, str, str]  # (device, camera, condition, release)


@dataclass(frozen=True)
class Attempt:
    """One attempt that made no baseline, as it is stored."""

    device_id: str
    camera_id: str
    condition: str
    release_id: str
    reason: Reason
    message: str
    windows: int
    windows_needed: int
    busy_windows: int | None = None


_KEY = ("device_id", "camera_id", "condition", "release_id")
_MESSAGE_CHARS = 512
DELETE_BATCH = 1000


def record(session: Session, attempts: list[Attempt], learned: list[KeyOf]) -> None:
    """Store these attempts (each replaces its key's previous one, whose first try is
    kept) and drop the rows of the keys ``learned`` now. One statement each."""
    table: sa.Table = DriftBaselineAttempt.__table__  # type: ignore[attr-defined]
    keys = sorted(set(learned))
    # A fleet's first baselines are thousands of keys of 4 values: batches stay far below
    # the bound parameters a statement may have (32,766 on SQLite).
    for i in range(0, len(keys), DELETE_BATCH):
        session.execute(sa.delete(table).where(
            sa.tuple_(*(table.c[k] for k in _KEY)).in_(keys[i : i + DELETE_BATCH])))
    if not attempts:
        return
    now = utc_now()
    # One row per key: an analysis sees each key once, but say so rather than trust it.
    latest = {(a.device_id, a.camera_id, a.condition, a.release_id): a for a in attempts}
    values: list[dict[str, Any]] = [
        asdict(a) | {"message": a.message[:_MESSAGE_CHARS], "first_tried_at": now,
                     "tried_at": now}
        for _, a in sorted(latest.items())]
    dialect = session.get_bind().dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    changed = [c for c in values[0] if c not in _KEY and c != "first_tried_at"]
    session.execute(stmt.on_conflict_do_update(
        index_elements=list(_KEY), set_={c: stmt.excluded[c] for c in changed}), values)


def drop_superseded(session: Session, device_ids: list[str]) -> int:
    """Delete the rows of these devices of a release they no longer report active (a
    device that reports none keeps its rows); how many (device, release) pairs. Without
    this, every promotion would leave its predecessor's rows behind for good: hidden from
    the lists, but never learned, so never removed. A rollback records them again at its
    first analysis. Scoped to the devices analysed (a sweep of the whole table at every
    chunk would read a fleet's rows once per chunk) and found by a join before deleting:
    a 1,000-device chunk whose 20,000 rows are all learning reads them in 10-110 ms
    (docs/drift.md)."""
    a = DriftBaselineAttempt
    ids, gone = sorted(set(device_ids)), set[tuple[str, str]]()
    for i in range(0, len(ids), 500):
        gone |= {(device, release) for device, release in session.execute(
            sa.select(col(a.device_id), col(a.release_id)).distinct()
            .join(Device, col(Device.device_id) == col(a.device_id))
            .where(col(a.device_id).in_(ids[i : i + 500]),
                   col(a.release_id) != col(Device.active_release_id)))}
    pairs = sorted(gone)
    for i in range(0, len(pairs), 500):
        session.execute(sa.delete(a).where(
            sa.tuple_(col(a.device_id), col(a.release_id)).in_(pairs[i : i + 500])))
    # A key's pooled windows are added only beside its attempt row: these pairs have all.
    baseline_pool.drop_releases(session, pairs)
    return len(pairs)


def listing(
    session: Session,
    *,
    device_id: str | None = None,
    release_id: str | None = None,
    every_release: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[DriftBaselineAttempt], int]:
    """The camera × conditions still learning, latest tried first, with the total: of the
    release each device reports active (or of any, for a device that reports none);
    ``every_release``: also those of a release a device left since the last analysis
    (which drops them)."""
    a = DriftBaselineAttempt
    where: list[Any] = [col(c) == v for c, v in ((a.device_id, device_id),
                                                  (a.release_id, release_id)) if v is not None]
    query = select(a)
    if not every_release:
        running = col(Device.active_release_id)
        query = query.join(Device, col(Device.device_id) == col(a.device_id))
        where.append(sa.or_(running.is_(None), running == col(a.release_id)))
    total = session.exec(select(func.count()).select_from(query.where(*where).subquery())).one()
    rows = session.exec(
        query.where(*where)
        .order_by(col(a.tried_at).desc(), col(a.device_id), col(a.camera_id),
                  col(a.condition))
        .limit(limit).offset(offset))
    return list(rows), int(total)


__all__ = ["Attempt", "Reason", "drop_superseded", "listing", "record"]
