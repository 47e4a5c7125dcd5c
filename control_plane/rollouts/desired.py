"""The one writer of devices' desired states, and the one way they are published.

A device's desired state (release, mode, fallback, rollout) and its revision change only
in :func:`write`, on a device locked by :func:`lock_devices` in the same transaction, so
two writers (a rollout tick, an operator's ``--supersede``, abort or rollback, in any
thread or process) never both read revision N and both write N + 1:

- SQLite: the transaction begins ``IMMEDIATE`` (the database's one write lock) before
  anything is read; a second writer waits on the busy timeout;
- PostgreSQL: the transaction first takes one advisory lock, the same for every writer
  of desired states (so writers that lock rollouts and devices in different orders
  never deadlock), then locks the device rows ``FOR UPDATE`` and re-reads them.

A writer's lock lasts until its commit; a tick holds it for milliseconds, so writers in
several processes queue rather than run side by side.

Publishing follows the commit: :func:`publish` locks the devices again, reads what the
store holds now and publishes that, so a publisher that lost a race publishes the newer
state, never its own older one. The same holds for the re-publish on reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from sqlalchemy import text
from sqlmodel import Session, col, select

from protocols import AgentSettings, DesiredState
from protocols.logs import bind_context

from ..store.models import Device, Rollout, utc_now
from .policy import policy_of

log = logging.getLogger(__name__)
_CHUNK = 500  # ids per IN (...) list
_WRITER_LOCK = 0x70776473  # pg advisory lock key of the desired-state writers ("pwds")


class DesiredStatePublisher(Protocol):
    """Delivers desired states to devices (the MQTT adapter, or nothing in API-only mode)."""

    def publish_desired(self, state: DesiredState) -> None: ...


def desired_of(session: Session, device: Device) -> DesiredState:
    """The desired state the store holds for ``device``, as it goes on the wire."""
    shadow = device.desired_mode == "shadow"
    settings = AgentSettings()
    rollout = (session.get(Rollout, device.desired_rollout_id)
               if shadow and device.desired_rollout_id else None)
    if rollout is not None:  # the rollout's policy says how much of the stream to mirror
        settings = AgentSettings(shadow_fraction=policy_of(rollout).shadow_fraction)
    return DesiredState(
        device_id=device.device_id,
        revision=device.desired_revision,
        release_id=device.desired_release_id,
        mode="shadow" if shadow else "active",
        fallback_release_id=device.desired_fallback_release_id,
        rollout_id=device.desired_rollout_id,
        issued_at=device.desired_issued_at or utc_now(),
        settings=settings,
    )


def begin_write(session: Session) -> None:
    """Hold the desired-state writers' lock until this transaction ends (taken again in
    the same transaction, it is already held)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _WRITER_LOCK})
        return
    raw = connection.connection.dbapi_connection
    # Python's sqlite3 opens a transaction only before a write, which then holds the lock.
    if raw is not None and not getattr(raw, "in_transaction", True):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock_devices(session: Session, device_ids: Iterable[str]) -> dict[str, Device]:
    """Lock ``device_ids`` for writing and re-read them (objects the session already held
    are refreshed: a read taken before the lock may be stale)."""
    begin_write(session)
    wanted = sorted(set(device_ids))
    found: dict[str, Device] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.exec(
            select(Device).where(col(Device.device_id).in_(wanted[start:start + _CHUNK]))
            .order_by(col(Device.device_id)).with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        found.update((d.device_id, d) for d in rows)
    return found


def write(
    session: Session, device: Device, *, release_id: str | None, mode: str,
    fallback_release_id: str | None, rollout_id: str | None, now: datetime,
) -> int:
    """A new desired state for a device locked by :func:`lock_devices`; its revision."""
    device.desired_revision += 1
    device.desired_release_id = release_id
    device.desired_mode = mode
    device.desired_fallback_release_id = fallback_release_id
    device.desired_rollout_id = rollout_id
    device.desired_issued_at = now
    session.add(device)
    return device.desired_revision


def publish(session: Session, publisher: DesiredStatePublisher,
            device_ids: Iterable[str]) -> int:
    """After the commit that wrote their states: publish the devices' current desired
    states under their locks (a newer one, if another writer got there first). How many."""
    wanted = list(device_ids)
    if not wanted:
        return 0
    try:
        devices = lock_devices(session, wanted)
        for device_id in sorted(devices):
            state = desired_of(session, devices[device_id])
            with bind_context(device_id=state.device_id, release_id=state.release_id):
                publisher.publish_desired(state)
    finally:
        session.commit()  # releases the locks
    return len(devices)


def republish_all(session: Session, publisher: DesiredStatePublisher) -> int:
    """Every device's current desired state again, under the locks (after a reconnect: an
    embedded broker forgets retained messages when it restarts)."""
    ids = session.exec(select(Device.device_id).where(col(Device.desired_revision) > 0)).all()
    return publish(session, publisher, ids)
