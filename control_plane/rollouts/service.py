"""Rollouts: the public face of the engine (what routes, MQTT ingest and other services call).

A rollout targets devices (ids, a group, labels, or all), moves in waves that must
pass health gates, pauses and rolls a failed wave back by itself, and can wait for a
human approval. The pieces:

- ``waves``: wave planning (pure);
- ``gates``: gate evaluation (pure);
- ``report``: what a reported state means for a device (pure);
- ``engine``: the persisted state machine, ``tick`` and ``record_report``;
- ``reported``: reported states into device rows, a batch in a few statements;
- ``actions``: start, pause, resume, approve, abort, roll back.

Every function here commits, then publishes the desired states it produced, so a
device never hears of a state the store does not hold.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from protocols import ReportedState

from ..config.rollout_policy import RolloutPolicy
from ..errors import InvalidRequestError, NotFoundError
from ..schemas.rollouts import (
    GateResultPublic,
    RolloutDevicePublic,
    RolloutPublic,
    RolloutWavePublic,
)
from ..store.among import among
from ..store.models import Device, Rollout, RolloutDevice, RolloutWave
from . import actions, desired, engine
from .desired import DesiredStatePublisher, desired_of
from .policy import policy_of
from .reported import Reporter, record_reports
from .states import ACTIVE_STATES
from .waves import Candidate

__all__ = [
    "DesiredStatePublisher", "act", "advance", "catch_up", "catch_up_many", "decide",
    "desired_of",
    "get_rollout",
    "list_rollouts", "on_reported", "on_reported_many", "plan_rollout", "publish_current",
    "republish_desired", "rollout_state", "start_rollout", "tick_all",
]
log = logging.getLogger(__name__)
DEVICE_PAGE = 1000  # devices listed in a rollout's answer unless asked for another page
Action = Literal["pause", "resume", "approve", "abort", "rollback"]


def rollout_state(device_states: Sequence[str]) -> str:
    """A one-word summary of device states (``failed`` if any failed); for reports."""
    if any(s == "failed" for s in device_states):
        return "failed"
    if device_states and all(s == "superseded" for s in device_states):
        return "superseded"
    if all(s in ("acknowledged", "superseded") for s in device_states):
        return "completed"
    return "in_progress"


def _targets(session: Session, device_ids: Sequence[str] | None) -> list[Candidate]:
    # The three columns planning reads, not whole devices: loading 10,000 devices with
    # their reported states as ORM objects was most of a large POST /rollouts.
    query = sa.select(col(Device.device_id), col(Device.online), col(Device.labels)).order_by(
        col(Device.device_id))
    if device_ids is not None:
        wanted = sorted(set(device_ids))
        if not wanted:
            raise InvalidRequestError("devices is empty: name devices, or null for all")
        rows = [Candidate(d, bool(on), labels or {}) for d, on, labels in
                session.execute(query.where(among(session, col(Device.device_id), wanted)))
                .all()]
        missing = sorted(set(wanted) - {d.device_id for d in rows})
        if missing:
            raise NotFoundError(
                f"unknown device(s) {missing[:20]}: add them with `parkwatch devices create`"
            )
        return rows
    rows = [Candidate(d, bool(on), labels or {}) for d, on, labels in
            session.execute(query).all()]
    if not rows:
        raise InvalidRequestError(
            "no devices are provisioned: add one with `parkwatch devices create`"
        )
    return rows


def plan_rollout(
    session: Session,
    release_id: str,
    device_ids: Sequence[str] | None,
    mode: Literal["active", "shadow"],
    *,
    who: str,
    policy: RolloutPolicy | None = None,
    shadow_phase: bool | None = None,
    supersede: bool = False,
    target: dict[str, Any] | None = None,
) -> Rollout:
    """Plan a rollout of ``release_id`` to ``device_ids`` (None: every device) and commit;
    nothing is sent yet (``advance``, or the engine's next tick, starts the first wave).
    ``shadow_phase`` overrides the policy's; devices already in an active rollout are
    refused unless ``supersede``."""
    policy = policy or RolloutPolicy()
    if shadow_phase is not None:
        policy = policy.model_copy(update={"shadow_phase": shadow_phase})
    devices = _targets(session, device_ids)
    rollout = actions.create(
        session, release_id, devices, mode, policy, who=who, supersede=supersede, target=target
    )
    session.commit()
    log.info("rollout planned", extra={"rollout_id": rollout.rollout_id, "devices": len(devices)})
    return rollout


def start_rollout(
    session: Session,
    publisher: DesiredStatePublisher,
    release_id: str,
    device_ids: Sequence[str] | None,
    mode: Literal["active", "shadow"],
    *,
    who: str,
    policy: RolloutPolicy | None = None,
    shadow_phase: bool | None = None,
    supersede: bool = False,
    target: dict[str, Any] | None = None,
) -> Rollout:
    """``plan_rollout``, then ``advance`` it at once (the first wave goes out now)."""
    rollout = plan_rollout(session, release_id, device_ids, mode, who=who, policy=policy,
                           shadow_phase=shadow_phase, supersede=supersede, target=target)
    advance(session, publisher, rollout.rollout_id)
    return rollout


def act(
    session: Session, publisher: DesiredStatePublisher, rollout_id: str, action: Action,
    *, who: str, reason: str | None = None,
) -> None:
    """Pause, resume, approve, abort or roll back a rollout (audited with who and when),
    then publish the desired states it wrote."""
    desired.publish(session, publisher, decide(session, rollout_id, action, who=who,
                                               reason=reason))


def decide(
    session: Session, rollout_id: str, action: Action, *, who: str, reason: str | None = None,
) -> list[str]:
    """``act`` up to its commit: the devices whose desired states to publish next
    (``publish_current``; the API answers first, then publishes)."""
    sent: list[str] = []
    if action == "pause":
        actions.pause(session, rollout_id, who=who, reason=reason)
    elif action == "abort":
        sent = actions.abort(session, rollout_id, who=who, reason=reason)
    elif action == "resume":
        sent = actions.resume(session, rollout_id, who=who, reason=reason)
    elif action == "approve":
        sent = actions.approve(session, rollout_id, who=who, reason=reason)
    else:
        sent = actions.rollback(session, rollout_id, who=who, reason=reason)
    session.commit()
    log.info("rollout %s", action, extra={"rollout_id": rollout_id, "who": who,
                                          "devices": len(sent)})
    return sent


def advance(session: Session, publisher: DesiredStatePublisher, rollout_id: str) -> int:
    """Tick one rollout now (one transaction; a rollout that only waits for reports is
    looked at before any lock), then publish the desired states it wrote; how many went
    out. A failed tick is rolled back and logged; the next one retries."""
    try:
        if engine.tick_if_waiting(session, rollout_id):
            return 0
        sent = engine.tick(session, rollout_id)
        session.commit()
    except Exception:
        session.rollback()
        log.exception("rollout tick failed", extra={"rollout_id": rollout_id})
        return 0
    return desired.publish(session, publisher, sent)


def tick_all(session: Session, publisher: DesiredStatePublisher) -> int:
    """Advance every rollout in progress (one transaction each); how many states went out."""
    ids = session.exec(
        select(Rollout.rollout_id).where(Rollout.state == "in_progress")
        .order_by(col(Rollout.created_at))
    ).all()
    return sum(advance(session, publisher, rollout_id) for rollout_id in ids)


def on_reported(session: Session, device: Device, reported: ReportedState) -> str | None:
    """Advance the device's current rollout from its reported state; the new state or None.
    The next tick judges the wave's gates."""
    return engine.record_report(session, device, reported)


def on_reported_many(
    session: Session, reports: Sequence[tuple[Reporter, ReportedState]]
) -> dict[str, str]:
    """``on_reported`` for a batch, in a few statements; the new states by device id."""
    return record_reports(session, reports)


def get_rollout(session: Session, rollout_id: str, *, device_limit: int = DEVICE_PAGE,
                device_offset: int = 0) -> RolloutPublic:
    """A rollout, its waves with counts by state (one aggregate query) and one page of its
    devices (by id): at 10,000 devices the answer stays small."""
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        raise NotFoundError(f"no rollout {rollout_id!r}: see `parkwatch rollouts list`")
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for wave_number, state, n in session.exec(
        select(RolloutDevice.wave, RolloutDevice.state, func.count())
        .where(RolloutDevice.rollout_id == rollout_id)
        .group_by(col(RolloutDevice.wave), col(RolloutDevice.state))
    ).all():
        counts[wave_number][state] += int(n)
    rows = session.exec(
        select(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id)
        .order_by(col(RolloutDevice.device_id)).offset(device_offset).limit(device_limit)
    ).all() if device_limit > 0 else []
    return RolloutPublic(
        rollout_id=rollout.rollout_id,
        release_id=rollout.release_id,
        mode=rollout.mode,
        state=rollout.state,
        current_wave=rollout.current_wave,
        paused_reason=rollout.paused_reason,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        updated_at=rollout.updated_at,
        policy=policy_of(rollout),
        waves=[_wave_public(w, counts[1 if w.number == 0 else w.number])
               for w in engine.waves_of(session, rollout_id)],
        device_count=sum(sum(c.values()) for c in counts.values()),
        device_states=dict(sum(counts.values(), Counter())),
        devices=[
            RolloutDevicePublic(device_id=r.device_id, state=r.state, revision=r.revision,
                                wave=r.wave, detail=r.detail, updated_at=r.updated_at)
            for r in rows
        ],
    )


def _wave_public(wave: RolloutWave, states: Counter[str]) -> RolloutWavePublic:
    """A wave and the states of its rows (the shadow phase's are wave 1's)."""
    return RolloutWavePublic(
        number=wave.number, mode=wave.mode, state=wave.state, device_count=wave.device_count,
        acknowledged=states["acknowledged"],
        pending=states["planned"] + states["pending"],
        failed=states["failed"] + states["expired"],
        states=dict(states),
        started_at=wave.started_at, finished_at=wave.finished_at,
        approved_by=wave.approved_by, approved_at=wave.approved_at,
        gates=[GateResultPublic.model_validate(g) for g in wave.gates or []],
    )


def list_rollouts(
    session: Session, *, limit: int, offset: int, active: bool | None = None,
    device_limit: int = DEVICE_PAGE,
) -> tuple[list[RolloutPublic], int]:
    where = []
    if active is not None:
        states = col(Rollout.state).in_(ACTIVE_STATES)
        where.append(states if active else ~states)
    total = session.exec(select(func.count()).select_from(Rollout).where(*where)).one()
    ids = session.exec(
        select(Rollout.rollout_id).where(*where)
        .order_by(col(Rollout.created_at).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [get_rollout(session, i, device_limit=device_limit) for i in ids], total


def catch_up(session: Session, device: Device, reported: ReportedState) -> list[str]:
    """After a device showed the store went back in time: the devices to publish again
    (``publish_current``, after the commit); see ``desired.catch_up``."""
    return desired.catch_up(session, device, reported)


def catch_up_many(session: Session, reports: Sequence[tuple[Reporter, ReportedState]]
                  ) -> list[str]:
    """``catch_up`` for a batch: the store's epoch is read once (a batch is one
    transaction, so the answer holds for all of it, "no epoch row" included), and only a
    device ahead of the store is read and written."""
    if all(r.desired_revision is None for _d, r in reports):
        return []
    epoch = desired.store_epoch(session)
    behind: set[str] = set()
    for device, reported in reports:
        # An epoch or revision that grows below only makes fewer devices ahead; catch_up
        # checks again on what the store holds now.
        if desired.is_ahead(reported, epoch, device.desired_revision):
            stored = session.get(Device, device.device_id, populate_existing=True)
            if stored is not None:
                behind.update(desired.catch_up(session, stored, reported))
    return sorted(behind)


def publish_current(session: Session, publisher: DesiredStatePublisher,
                    device_ids: Sequence[str]) -> int:
    """Publish what the store holds for ``device_ids``, each under its lock."""
    return desired.publish(session, publisher, device_ids)


def republish_desired(session: Session, publisher: DesiredStatePublisher) -> int:
    """Publish every device's desired state again, each under its lock, so a tick that
    commits meanwhile is never followed by the older state (which would stay retained)."""
    return desired.republish_all(session, publisher)
