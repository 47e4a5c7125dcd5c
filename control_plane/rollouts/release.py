"""What the tick reads of a rollout's devices, and a wave's release sent to many devices in
a few set-based statements.

At 10,000 devices an ORM object per device, loaded, locked and flushed one by one, costs
the tick seconds while it holds the writers' lock. Here the devices are read as plain
rows (no row locks: every writer of desired states waits on the writers' lock the tick
already holds, ``desired.begin_write``), and a release goes out as one ``UPDATE`` of the
devices (``desired.write_many``) and one of their rollout rows per chunk and fallback
release; the rows in memory take the new values without being flushed again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from ..store.among import among
from ..store.models import Device, Rollout, RolloutDevice, RolloutWave
from . import desired
from .states import DEVICE, DeviceEvent

_CHUNK = 500  # ids per IN (...) list


@dataclass(frozen=True, slots=True)
class DeviceView:
    """What the tick needs of a device: liveness for the gates, and what it runs now."""

    device_id: str
    online: bool
    status_at: datetime | None
    desired_rollout_id: str | None
    serving: str | None  # what it falls back to if the new release fails


def serving_release(reported: dict[str, object] | None, desired_release_id: str | None
                    ) -> str | None:
    """What a device runs now: the release it reports active, else the one it was sent."""
    active = (reported or {}).get("active") or {}
    running = active.get("release_id") if isinstance(active, dict) else None
    running = running or desired_release_id
    return running if isinstance(running, str) else None


def read_devices(session: Session, device_ids: Sequence[str]) -> dict[str, DeviceView]:
    """The devices as the tick sees them (plain rows, in chunks)."""
    wanted = sorted(set(device_ids))
    found: dict[str, DeviceView] = {}
    for start in range(0, len(wanted), _CHUNK):
        for device_id, online, status_at, rollout_id, release_id, reported in session.execute(
            sa.select(col(Device.device_id), col(Device.online), col(Device.status_at),
                      col(Device.desired_rollout_id), col(Device.desired_release_id),
                      col(Device.reported))
            .where(among(session, col(Device.device_id), wanted[start:start + _CHUNK]))
        ).all():
            found[device_id] = DeviceView(device_id, bool(online), status_at, rollout_id,
                                          serving_release(reported, release_id))
    return found


def release_many(
    session: Session, rollout: Rollout, wave: RolloutWave, rows: Sequence[RolloutDevice],
    devices: dict[str, DeviceView], now: datetime,
) -> list[str]:
    """Send the rollout's release to the devices of ``rows`` in ``wave``'s mode (the caller
    holds the writers' lock); their ids. Each row records the revision it was sent as."""
    detail = f"sent in wave {wave.number} ({wave.mode})"
    # (fallback release, state it moves to): one UPDATE of devices and of rows per chunk
    groups: dict[tuple[str | None, str], list[RolloutDevice]] = defaultdict(list)
    for row in rows:
        device = devices[row.device_id]
        # A device this rollout already owns keeps the fallback it had before it.
        fallback = (row.fallback_release_id if device.desired_rollout_id == rollout.rollout_id
                    else device.serving)
        groups[(fallback, DEVICE.next(row.state, "release"))].append(row)
    table = RolloutDevice.__table__  # type: ignore[attr-defined]
    revision_now = (sa.select(col(Device.desired_revision))
                    .where(col(Device.device_id) == table.c.device_id).scalar_subquery())
    for (fallback, to), group in groups.items():
        for start in range(0, len(group), _CHUNK):
            chunk = group[start:start + _CHUNK]
            desired.write_many(session, [r.device_id for r in chunk],
                               release_id=rollout.release_id, mode=wave.mode,
                               fallback_release_id=fallback, rollout_id=rollout.rollout_id,
                               now=now)
            values = {"state": to, "detail": detail, "updated_at": now, "released_at": now,
                      "acked_at": None, "fallback_release_id": fallback}
            ids = [r.id for r in chunk]
            session.execute(sa.update(table).where(among(session, table.c.id, ids))
                            .values(revision=revision_now, **values))
            revisions = dict(session.exec(
                select(Device.device_id, Device.desired_revision)
                .where(among(session, col(Device.device_id), [r.device_id for r in chunk]))
            ).all())
            for row in chunk:
                mirror(row, {**values, "revision": revisions[row.device_id]})
    return [r.device_id for group in groups.values() for r in group]


def move_rows(session: Session, rows: Sequence[RolloutDevice], event: DeviceEvent,
              now: datetime, detail: str, **values: object) -> None:
    """``states.move_device`` for many rows in one UPDATE per chunk and target state (the
    table decides each row's move); ``values``: other columns to write with it."""
    groups: dict[str, list[RolloutDevice]] = defaultdict(list)
    for row in rows:
        groups[DEVICE.next(row.state, event)].append(row)
    for state, group in groups.items():
        update_rows(session, group, {"state": state, "detail": detail[:1024],
                                     "updated_at": now, **values})


def update_rows(session: Session, rows: Sequence[RolloutDevice],
                values: dict[str, object]) -> None:
    """Write ``values`` to every row of ``rows`` in one UPDATE per chunk, and the rows in
    memory take them as if loaded (nothing left to flush one by one)."""
    table = RolloutDevice.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start:start + _CHUNK]
        session.execute(sa.update(table).where(among(session, table.c.id, [r.id for r in chunk]))
                        .values(**values))
        for row in chunk:
            mirror(row, values)


def mirror(row: RolloutDevice, values: dict[str, object]) -> None:
    """The row in memory takes what an UPDATE wrote, as if loaded (nothing to flush)."""
    for name, value in values.items():
        set_committed_value(row, name, value)


__all__ = ["DeviceView", "mirror", "move_rows", "read_devices", "release_many", "serving_release",
           "update_rows"]
