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

from protocols import AgentSettings, DesiredState, ReportedState, SignedDesiredState, sign_desired
from protocols.logs import bind_context

from ..services import audit
from ..store.keys import Keyring
from ..store.models import Device, Release, Rollout, StoreEpoch, utc_now
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
        epoch=store_epoch(session),
        rollback=_is_rollback(session, device),
    )


def store_epoch(session: Session) -> int:
    row = session.get(StoreEpoch, 1)
    return row.epoch if row is not None else 0


def _is_rollback(session: Session, device: Device) -> bool:
    """Whether the state allows a move to an older release (agents refuse one otherwise):
    a revert of a rollout, or a release older than the one the device reports serving."""
    wanted = device.desired_release_id
    if wanted is None:
        return False
    rollout = (session.get(Rollout, device.desired_rollout_id)
               if device.desired_rollout_id else None)
    if rollout is not None and rollout.release_id != wanted:
        return True  # pointed back (abort, rollback, failed gate), whatever it reported yet
    active = (device.reported or {}).get("active") or {}
    serving = active.get("release_id")
    if not isinstance(serving, str) or serving == wanted:
        return False
    old, new = session.get(Release, wanted), session.get(Release, serving)
    return old is not None and new is not None and old.created_at < new.created_at


class Signer:
    """Signs desired states with the keyring's active key (read once: a rotation takes
    effect at the next start; agents keep trusting the old key meanwhile)."""

    def __init__(self, keyring: Keyring) -> None:
        self.key_id, self._key = keyring.signing_key()

    def __call__(self, state: DesiredState) -> SignedDesiredState:
        return sign_desired(state, self._key)


def signer_for(keyring: Keyring) -> Signer | None:
    """A signer, or None where this process has no signing key (it publishes unsigned
    states only; agents that verify wait for a process that signs)."""
    return Signer(keyring) if keyring.initialised else None


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


def catch_up(session: Session, device: Device, reported: ReportedState) -> list[str]:
    """The devices whose desired states must go out again because ``device`` has handled a
    desired state newer than any the store holds: the store went back in time (restored
    from a backup). The store's epoch grows (agents then accept its revisions again) and
    the device's revision moves past the one it saw (agents older than epochs compare
    revisions only). Every device is re-published after an epoch change."""
    seen = reported.desired_revision
    if seen is None:
        return []
    epoch = store_epoch(session)
    if reported.desired_epoch is None:  # an agent before epochs (or still in epoch 0)
        ahead = seen > device.desired_revision
    else:
        ahead = (reported.desired_epoch, seen) > (epoch, device.desired_revision)
    if not ahead:
        return []
    device = lock_devices(session, [device.device_id])[device.device_id]
    why = (f"device {device.device_id} has handled desired revision {seen} of epoch "
           f"{reported.desired_epoch or 0}; the store's newest is {device.desired_revision} "
           f"of epoch {epoch}: the store was restored from a backup or replaced")
    bumped = (reported.desired_epoch or 0) >= epoch
    if bumped:
        now = utc_now()
        new = max(epoch + 1, (reported.desired_epoch or 0) + 1, int(now.timestamp() * 1000))
        row = session.get(StoreEpoch, 1) or StoreEpoch(id=1)
        row.epoch, row.reason, row.changed_at = new, why[:1024], now
        session.add(row)
        audit.record(session, "control-plane", "store.epoch", f"device:{device.device_id}",
                     epoch=new, previous=epoch, reason=why)
        log.warning("%s; desired states now carry epoch %d and go out again", why, new)
    else:
        log.warning("%s; its revision moves past %d", why, seen)
    device.desired_revision = max(device.desired_revision, seen)
    write(session, device, release_id=device.desired_release_id,
          mode=device.desired_mode or "active",
          fallback_release_id=device.desired_fallback_release_id,
          rollout_id=device.desired_rollout_id, now=utc_now())
    if not bumped:
        return [device.device_id]
    return list(session.exec(
        select(Device.device_id).where(col(Device.desired_revision) > 0)).all())


def republish_all(session: Session, publisher: DesiredStatePublisher) -> int:
    """Every device's current desired state again, under the locks (after a reconnect: an
    embedded broker forgets retained messages when it restarts)."""
    ids = session.exec(select(Device.device_id).where(col(Device.desired_revision) > 0)).all()
    return publish(session, publisher, ids)
