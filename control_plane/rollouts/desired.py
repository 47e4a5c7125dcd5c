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

Publishing follows the commit: :func:`publish` takes the writers' lock again, reads
what the store holds now, publishes that and keeps the lock until the broker has
acknowledged it (PUBACK: Mosquitto retains a message before it acknowledges it). So a
publisher that lost a race publishes the newer state, never its own older one, and no
other writer, in this process or another replica, can commit and publish a newer state
while an older one is still on its way to the broker. Devices go out in chunks, each
under its own lock, so ingest and other writers get turns during a large publish.
The same holds for the re-publish on reconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import Session, col, select

from protocols import AgentSettings, DesiredState, ReportedState, SignedDesiredState, sign_desired
from protocols.logs import bind_context

from ..services import audit
from ..store.among import among
from ..store.keys import Keyring
from ..store.models import Device, Release, Rollout, StoreEpoch, utc_now
from .policy import policy_of

log = logging.getLogger(__name__)
_CHUNK = 500  # ids per IN (...) list
# How long a publish waits for the MQTT client to drain with no acknowledgement at all.
ROOM_TIMEOUT_S = 30.0
_WRITER_LOCK = 0x70776473  # pg advisory lock key of the desired-state writers ("pwds")


class DesiredStatePublisher(Protocol):
    """Delivers desired states to devices (the MQTT adapter, or nothing in API-only mode)."""

    def publish_desired(self, state: DesiredState) -> None: ...


@runtime_checkable
class BatchPublisher(Protocol):
    """A publisher that sends many states at once and returns when the broker has them."""

    def publish_desired_batch(self, states: Sequence[DesiredState]) -> Sequence[str]:
        """Send ``states`` in order until the client's queue is full; the device ids of
        those not sent."""
        ...

    def wait_for_room(self, timeout: float) -> bool:
        """Wait for room in the client's queue; False if none will come soon (the client
        is disconnected or the broker stopped acknowledging)."""
        ...


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store holds of a device's desired state (read as a plain row)."""

    device_id: str
    desired_revision: int
    desired_release_id: str | None
    desired_mode: str | None
    desired_fallback_release_id: str | None
    desired_rollout_id: str | None
    desired_issued_at: datetime | None
    reported: dict[str, Any] | None


_STORED = [col(getattr(Device, f.name)) for f in fields(Stored)]


def read_stored(session: Session, device_ids: Sequence[str]) -> list[Stored]:
    """The devices' stored desired states, by id (one query: at most _CHUNK ids)."""
    return [Stored(*row) for row in session.execute(
        sa.select(*_STORED).where(among(session, col(Device.device_id), device_ids))
        .order_by(col(Device.device_id))).all()]


def desired_of(session: Session, device: Device) -> DesiredState:
    """The desired state the store holds for ``device``, as it goes on the wire."""
    return desired_states(session, [device])[0]


def desired_states(session: Session, devices: Sequence[Device | Stored]) -> list[DesiredState]:
    """:func:`desired_of` for many devices: their rollouts and releases read once."""
    rollouts = _rollouts(session, {d.desired_rollout_id for d in devices
                                   if d.desired_rollout_id})
    wanted: set[str] = set()
    for d in devices:
        wanted.update(r for r in (d.desired_release_id, _serving(d)) if r is not None)
    created = dict(session.exec(select(Release.release_id, Release.created_at)
                                .where(col(Release.release_id).in_(sorted(wanted)))).all())
    epoch = store_epoch(session)
    plain = AgentSettings()
    shadow_settings: dict[str, AgentSettings] = {}
    out = []
    for device in devices:
        shadow = device.desired_mode == "shadow"
        rollout = rollouts.get(device.desired_rollout_id or "")
        settings = plain
        if shadow and rollout is not None:  # its policy says how much of the stream to mirror
            if rollout.rollout_id not in shadow_settings:
                shadow_settings[rollout.rollout_id] = AgentSettings(
                    shadow_fraction=policy_of(rollout).shadow_fraction)
            settings = shadow_settings[rollout.rollout_id]
        out.append(DesiredState(
            device_id=device.device_id,
            revision=device.desired_revision,
            release_id=device.desired_release_id,
            mode="shadow" if shadow else "active",
            fallback_release_id=device.desired_fallback_release_id,
            rollout_id=device.desired_rollout_id,
            issued_at=device.desired_issued_at or utc_now(),
            settings=settings,
            epoch=epoch,
            rollback=_is_rollback(device, rollout, created),
        ))
    return out


def _rollouts(session: Session, ids: set[str]) -> dict[str, Rollout]:
    wanted = sorted(ids)  # a handful: devices in a rollout share it
    return {r.rollout_id: r for r in session.exec(
        select(Rollout).where(col(Rollout.rollout_id).in_(wanted))).all()}


def store_epoch(session: Session) -> int:
    row = session.get(StoreEpoch, 1)
    return row.epoch if row is not None else 0


def _serving(device: Device | Stored) -> str | None:
    active = (device.reported or {}).get("active") or {}
    serving = active.get("release_id")
    return serving if isinstance(serving, str) else None


def _is_rollback(device: Device | Stored, rollout: Rollout | None,
                 created: dict[str, datetime]) -> bool:
    """Whether the state allows a move to an older release (agents refuse one otherwise):
    a revert of a rollout, or a release older than the one the device reports serving."""
    wanted = device.desired_release_id
    if wanted is None:
        return False
    if rollout is not None and rollout.release_id != wanted:
        return True  # pointed back (abort, rollback, failed gate), whatever it reported yet
    serving = _serving(device)
    if serving is None or serving == wanted:
        return False
    old, new = created.get(wanted), created.get(serving)
    return old is not None and new is not None and old < new


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
    are refreshed: a read taken before the lock may be stale). FOR NO KEY UPDATE, as
    ingest locks devices (``device_messages._read``): foreign-key checks pass."""
    begin_write(session)
    wanted = sorted(set(device_ids))
    found: dict[str, Device] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.exec(
            select(Device).where(col(Device.device_id).in_(wanted[start:start + _CHUNK]))
            .order_by(col(Device.device_id)).with_for_update(key_share=True)
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


def write_many(
    session: Session, device_ids: Sequence[str], *, release_id: str | None, mode: str,
    fallback_release_id: str | None, rollout_id: str | None, now: datetime,
) -> None:
    """:func:`write` for many devices in one statement (the caller holds the writers'
    lock, :func:`begin_write`); each revision grows by one in the statement itself."""
    revision = col(Device.desired_revision)
    session.execute(
        sa.update(Device).where(among(session, col(Device.device_id), device_ids))
        .values(desired_revision=revision + 1, desired_release_id=release_id,
                desired_mode=mode, desired_fallback_release_id=fallback_release_id,
                desired_rollout_id=rollout_id, desired_issued_at=now)
        .execution_options(synchronize_session=False))


def publish(session: Session, publisher: DesiredStatePublisher,
            device_ids: Iterable[str]) -> int:
    """After the commit that wrote their states: publish the devices' current desired
    states (a newer one, if another writer got there first), a chunk at a time, each under
    the writers' lock until the broker has it. How many.

    A wave can hold more messages than the MQTT client queues (two per device): the
    devices it could not queue are sent again once it has room, read afresh under the
    lock. It waits for that room outside the lock: on SQLite the client's network thread
    may be waiting for ingest, and ingest for the lock. Only a client that will not
    drain soon (disconnected, or a broker that stopped acknowledging) leaves the rest to
    the re-publish of every device when it connects again."""
    wanted = sorted(set(device_ids))
    sent = 0
    # A session of its own: the caller's may hold thousands of objects that every commit
    # here would walk through.
    with Session(session.get_bind()) as own:
        while wanted:
            chunk, wanted = wanted[:_CHUNK], wanted[_CHUNK:]
            try:
                begin_write(own)  # the writers' lock only: device rows stay free for ingest
                states = desired_states(own, read_stored(own, chunk))
                left = _send(publisher, states)
            finally:
                own.commit()  # releases the lock
            sent += len(states) - len(left)
            if not left:
                continue
            assert isinstance(publisher, BatchPublisher)  # only it leaves states unsent
            if len(left) == len(states):
                time.sleep(0.05)  # other messages fill the queue: no busy loop meanwhile
            if not publisher.wait_for_room(ROOM_TIMEOUT_S):
                log.warning("%d desired states wait for the MQTT client to reconnect: they "
                            "go out with the re-publish of every device on connect",
                            len(left) + len(wanted))
                return sent
            wanted = [*left, *wanted]
    return sent


def _send(publisher: DesiredStatePublisher, states: Sequence[DesiredState]) -> Sequence[str]:
    if isinstance(publisher, BatchPublisher):
        return publisher.publish_desired_batch(states)
    for state in states:
        with bind_context(device_id=state.device_id, release_id=state.release_id):
            publisher.publish_desired(state)
    return []


def is_ahead(reported: ReportedState, epoch: int, revision: int) -> bool:
    """Whether the device has handled a newer desired state than the store's newest for
    it (``revision`` of the store's ``epoch``)."""
    seen = reported.desired_revision
    if seen is None:
        return False
    if reported.desired_epoch is None:  # an agent before epochs (or still in epoch 0)
        return seen > revision
    return (reported.desired_epoch, seen) > (epoch, revision)


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
    if not is_ahead(reported, epoch, device.desired_revision):
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
    session.commit()  # no transaction of this session stays open beside publish's own
    return publish(session, publisher, ids)
