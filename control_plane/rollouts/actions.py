"""What people do to rollouts: start, pause, resume, approve, abort, roll back.

Each action locks the rollout, changes it, writes the audit entry (who, when) in the
same transaction, and returns the devices whose desired states to publish after the
commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from protocols.manifest import BASE_AGENT_VERSION, version_tuple

from ..config.rollout_policy import RolloutPolicy
from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..services import audit, releases
from ..store.among import among
from ..store.models import Device, Release, Rollout, RolloutDevice, RolloutWave, utc_now
from . import desired
from .engine import lock_rollout, revert_many, rows_of, tick, waves_of
from .release import move_rows
from .states import (
    ACTIVE_STATES,
    DEVICE,
    OWNING_ROW_STATES,
    RELEASED_ROW_STATES,
    ROLLOUT,
    WAVE,
    RolloutEvent,
    move_device,
    move_rollout,
    move_wave,
)
from .waves import Candidate, assign_waves

_CHUNK = 500  # ids per IN (...) list


def _refuse_old_agents(session: Session, release: Release, ids: Sequence[str]) -> None:
    """Refuse a rollout of ``release`` to devices whose agents report a version older
    than its manifest needs, or never reported one: such an agent forbids the manifest's
    newer fields and would fail the install on every retry, and an unknown version may be
    that old (a device registered ahead of its agent, or one that ran an agent from before
    versions were reported)."""
    needed = releases.min_agent_version(release)
    if version_tuple(needed) <= version_tuple(BASE_AGENT_VERSION):
        return
    old: list[str] = []
    unknown: list[str] = []
    for start in range(0, len(ids), _CHUNK):
        for device_id, version in session.execute(
                sa.select(col(Device.device_id), col(Device.agent_version))
                .where(among(session, col(Device.device_id), ids[start:start + _CHUNK]))
        ).all():
            if not version:
                unknown.append(device_id)
            elif version_tuple(version) < version_tuple(needed):
                old.append(device_id)
    found = [f"{len(names)} {why}: {_named(names)}" for names, why in (
        (old, "report older agents"), (unknown, "never reported an agent version")) if names]
    if found:
        raise InvalidRequestError(
            f"release {release.release_id} needs agents >= {needed} (older ones refuse its "
            f"manifest); of its devices {'; '.join(found)}: upgrade their agents (a started "
            "agent reports its version), or leave them out of the rollout's devices")


def _named(ids: list[str]) -> str:
    """Up to 20 device ids, sorted, and how many more."""
    names = sorted(ids)
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return ", ".join(names[:20]) + more


def create(
    session: Session,
    release_id: str,
    devices: Sequence[Candidate],
    mode: str,
    policy: RolloutPolicy,
    *,
    who: str,
    supersede: bool,
    target: dict[str, Any] | None = None,
) -> Rollout:
    """Plan a rollout over ``devices``: the rollout, its waves and a row per device, every
    row ``planned``. Nothing is sent: the engine's next tick starts the first wave."""
    _refuse_old_agents(session, releases.get_release(session, release_id),
                       [d.device_id for d in devices])
    if mode == "shadow" and policy.shadow_phase:
        raise InvalidRequestError("mode=shadow already runs every wave in shadow: drop "
                                  "shadow_phase, or use mode=active with a shadow phase")
    ids = [d.device_id for d in devices]
    # Before _take_over reads who holds them: another start commits first, or waits.
    desired.begin_write(session)
    waves = assign_waves(devices, policy.waves, policy.spread_label)
    now = utc_now()
    rollout = Rollout(rollout_id=f"ro-{secrets.token_hex(6)}", release_id=release_id,
                      mode=mode, state=ROLLOUT.initial, created_by=who,
                      policy=policy.model_dump(mode="json"), current_wave=1)
    session.add(rollout)
    session.flush()
    _take_over(session, ids, rollout.rollout_id, supersede, now)
    numbers = sorted(set(waves.values()))
    if policy.shadow_phase:
        numbers = [0, *numbers]
        rollout.current_wave = 0
    for n in numbers:
        count = sum(1 for w in waves.values() if w == (1 if n == 0 else n))
        session.add(RolloutWave(rollout_id=rollout.rollout_id, number=n, state=WAVE.initial,
                                mode="shadow" if n == 0 or mode == "shadow" else "active",
                                device_count=count))
    session.execute(sa.insert(RolloutDevice), [  # one statement, not an ORM object each
        {"rollout_id": rollout.rollout_id, "device_id": device_id, "wave": waves[device_id],
         "state": DEVICE.initial, "revision": 0, "updated_at": now} for device_id in ids])
    audit.record(session, who, "rollout.start", f"rollout:{rollout.rollout_id}",
                 release_id=release_id, mode=mode, devices=ids[:1000], device_count=len(ids),
                 targeted=target or {}, supersede=supersede,
                 policy=policy.model_dump(mode="json"))
    session.flush()
    return rollout


def _take_over(
    session: Session, device_ids: Sequence[str], new_id: str, supersede: bool, now: Any
) -> None:
    """One active rollout per device: refuse, or (``supersede``) take the devices over."""
    busy: list[tuple[RolloutDevice, Rollout]] = []
    for chunk in range(0, len(device_ids), 500):
        found = session.exec(
            select(RolloutDevice, Rollout)
            .join(Rollout, col(Rollout.rollout_id) == col(RolloutDevice.rollout_id))
            .where(among(session, col(RolloutDevice.device_id), device_ids[chunk:chunk + 500]),
                   col(RolloutDevice.state).in_(OWNING_ROW_STATES),
                   col(Rollout.state).in_(ACTIVE_STATES),
                   col(Rollout.rollout_id) != new_id)
        ).all()
        busy += [(row, ro) for row, ro in found]
    if not busy:
        return
    if not supersede:
        names = sorted({f"{row.device_id} ({ro.rollout_id})" for row, ro in busy})
        raise ConflictError(
            f"device(s) already in an active rollout: {', '.join(names[:5])}"
            f"{' and more' if len(names) > 5 else ''}; abort that rollout first, or start "
            "this one with --supersede (API: supersede=true)"
        )
    old_ids = set()
    for row, ro in busy:
        move_device(row, "supersede", now, f"superseded by {new_id}")
        session.add(row)
        old_ids.add(ro.rollout_id)
    session.flush()
    for old_id in sorted(old_ids):
        old = lock_rollout(session, old_id)
        if old is not None and not any(r.state in OWNING_ROW_STATES
                                       for r in rows_of(session, old_id)):
            move_rollout(old, "supersede", now, f"superseded by {new_id}")
            session.add(old)


def _locked(session: Session, rollout_id: str) -> Rollout:
    rollout = lock_rollout(session, rollout_id)
    if rollout is None:
        raise NotFoundError(f"no rollout {rollout_id!r}: see `parkwatch rollouts list`")
    return rollout


def _current_wave(session: Session, rollout: Rollout) -> RolloutWave:
    wave = next((w for w in waves_of(session, rollout.rollout_id)
                 if w.number == rollout.current_wave), None)
    if wave is None:  # cannot happen to rows written by the engine or migration 0004
        raise ConflictError(f"rollout {rollout.rollout_id} has no wave {rollout.current_wave}")
    return wave


def _require(rollout: Rollout, event: RolloutEvent, action: str) -> None:
    """Refuse (409) an action the rollout's table does not allow from its state."""
    if not ROLLOUT.allows(rollout.state, event):
        states = sorted(ROLLOUT.moves[event].sources)
        raise ConflictError(f"cannot {action} rollout {rollout.rollout_id}: it is "
                            f"{rollout.state} (only when {' or '.join(states)})")


def pause(session: Session, rollout_id: str, *, who: str, reason: str | None) -> None:
    rollout = _locked(session, rollout_id)
    _require(rollout, "pause", "pause")
    now = utc_now()
    move_rollout(rollout, "pause", now, f"paused by {who}" + (f": {reason}" if reason else ""))
    session.add(rollout)
    audit.record(session, who, "rollout.pause", f"rollout:{rollout_id}", reason=reason)


def resume(session: Session, rollout_id: str, *, who: str, reason: str | None
           ) -> list[str]:
    """Go on; a failed (or rolled-back) wave starts again from the beginning."""
    rollout = _locked(session, rollout_id)
    _require(rollout, "resume", "resume")
    now = utc_now()
    wave = _current_wave(session, rollout)
    retried = WAVE.allows(wave.state, "retry")
    if retried:
        number = 1 if wave.number == 0 else wave.number
        again = [r for r in rows_of(session, rollout_id)
                 if r.wave == number and DEVICE.allows(r.state, "retry")]
        move_rows(session, again, "retry", now, f"wave {wave.number} retried by {who}",
                  released_at=None, acked_at=None)
        move_wave(wave, "retry", now)
        wave.gates = None
        session.add(wave)
    move_rollout(rollout, "resume", now)
    session.add(rollout)
    audit.record(session, who, "rollout.resume", f"rollout:{rollout_id}",
                 reason=reason, retried_wave=wave.number if retried else None)
    session.flush()
    return tick(session, rollout_id, now)


def approve(session: Session, rollout_id: str, *, who: str, reason: str | None
            ) -> list[str]:
    """Let the rollout go beyond its approval wave; recorded with who and when."""
    rollout = _locked(session, rollout_id)
    _require(rollout, "approve", "approve")
    now = utc_now()
    wave = _current_wave(session, rollout)
    wave.approved_by, wave.approved_at = who[:128], now
    session.add(wave)
    move_rollout(rollout, "approve", now)
    session.add(rollout)
    audit.record(session, who, "rollout.approve", f"rollout:{rollout_id}",
                 wave=wave.number, reason=reason)
    session.flush()
    return tick(session, rollout_id, now)


def abort(session: Session, rollout_id: str, *, who: str, reason: str | None
          ) -> list[str]:
    """Stop here: no device that has not acknowledged the release gets it (those it was
    sent to are pointed back, so an offline one hears the revert when it reconnects);
    those that acknowledged keep it."""
    rollout = _locked(session, rollout_id)
    _require(rollout, "abort", "abort")
    now = utc_now()
    rows = rows_of(session, rollout_id)
    out = revert_many(session, rollout, [r for r in rows if r.state in RELEASED_ROW_STATES
                                         and r.state != "acknowledged"],
                      now, f"aborted by {who} before it acknowledged")
    _cancel_rest(session, rollout_id, rows, f"aborted by {who}", now)
    move_rollout(rollout, "abort", now, f"aborted by {who}" + (f": {reason}" if reason else ""))
    session.add(rollout)
    audit.record(session, who, "rollout.abort", f"rollout:{rollout_id}", reason=reason,
                 reverted=len(out))
    return out


def rollback(session: Session, rollout_id: str, *, who: str, reason: str | None
             ) -> list[str]:
    """Every device that got the release goes back to what it ran before."""
    rollout = _locked(session, rollout_id)
    _require(rollout, "roll_back", "roll back")
    now = utc_now()
    rows = rows_of(session, rollout_id)
    out = revert_many(session, rollout, [r for r in rows if r.state in RELEASED_ROW_STATES],
                      now, f"rolled back by {who}")
    _cancel_rest(session, rollout_id, rows, f"rolled back by {who}", now)
    move_rollout(rollout, "roll_back", now, reason)
    session.add(rollout)
    audit.record(session, who, "rollout.rollback", f"rollout:{rollout_id}",
                 reason=reason, devices=len(out))
    return out


def _cancel_rest(session: Session, rollout_id: str, rows: Sequence[RolloutDevice], why: str,
                 now: Any) -> None:
    """Rows not yet sent the release will not be; the waves not yet finished end."""
    move_rows(session, [r for r in rows if DEVICE.allows(r.state, "cancel")], "cancel", now, why)
    for wave in waves_of(session, rollout_id):
        if WAVE.allows(wave.state, "cancel"):
            move_wave(wave, "cancel", now)
            session.add(wave)
