"""The rollout engine: a state machine persisted in the store.

Nothing lives in memory between calls, so a control-plane restart resumes every
rollout where the store says it is. Two things drive it:

- ``record_report`` (MQTT ingest; ``reported.record_reports`` for a batch): a device's
  reported state moves its row ``pending -> acknowledged`` or ``-> failed``;
- ``tick`` (a periodic runner, and every operator action): deadlines, wave starts,
  rate-limited releases, gate evaluation, promotion, automatic rollback.

Each call takes the desired-state writers' lock (``desired.begin_write``) and locks the
rollout's row (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the transaction holds
the database's write lock from its start), so several API processes may tick the same
rollouts; devices and rows are written in set-based statements (``release.py``).
Functions return the devices whose desired states to publish: the caller commits first,
then publishes (``desired.publish``, which reads what the store holds then).

Every change of a rollout's, a wave's or a device row's state is a move of its table
(``states.py``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from protocols import ReportedState

from ..config.rollout_policy import RolloutPolicy
from ..services import audit
from ..store.among import among
from ..store.models import (
    Device,
    Rollout,
    RolloutDevice,
    RolloutWave,
    TelemetryWindowRecord,
    utc_now,
)
from . import desired, gates
from .policy import policy_of
from .release import DeviceView, move_rows, read_devices, release_many, update_rows
from .reported import record_reports
from .states import (
    DEVICE,
    RELEASED_ROW_STATES,
    move_device,
    move_rollout,
    move_wave,
)
from .waiting import still_waiting, waiting_gate
from .waves import release_budget

log = logging.getLogger(__name__)

ENGINE = "rollout-engine"  # the "who" of automatic actions in the audit log
_CHUNK = 500  # ids per IN (...) list


def lock_rollout(session: Session, rollout_id: str) -> Rollout | None:
    desired.begin_write(session)
    return session.exec(
        select(Rollout).where(Rollout.rollout_id == rollout_id).with_for_update()
    ).first()


def waves_of(session: Session, rollout_id: str) -> list[RolloutWave]:
    return list(session.exec(
        select(RolloutWave).where(RolloutWave.rollout_id == rollout_id)
        .order_by(col(RolloutWave.number))
    ).all())


def rows_of(session: Session, rollout_id: str) -> list[RolloutDevice]:
    return list(session.exec(
        select(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id)
        .order_by(col(RolloutDevice.device_id))
    ).all())


def wave_rows(rows: Sequence[RolloutDevice], wave: RolloutWave) -> list[RolloutDevice]:
    """The rows a wave acts on; the shadow phase (wave 0) runs on wave 1's devices."""
    number = 1 if wave.number == 0 else wave.number
    return [r for r in rows if r.wave == number]


# -- desired states --------------------------------------------------------------------------
def revert_many(
    session: Session, rollout: Rollout, rows: Sequence[RolloutDevice], now: datetime, why: str
) -> list[str]:
    """Point released devices back at their previous releases, in one UPDATE of devices
    and one of rows per chunk and fallback (the caller holds the writers' lock,
    ``desired.begin_write``); the devices pointed back. A device a newer rollout owns
    keeps its state."""
    owned: set[str] = set()
    ids = sorted(r.device_id for r in rows)
    for start in range(0, len(ids), _CHUNK):
        owned.update(session.exec(select(Device.device_id).where(
            among(session, col(Device.device_id), ids[start:start + _CHUNK]),
            Device.desired_rollout_id == rollout.rollout_id)).all())
    mine = [r for r in rows if r.device_id in owned]
    by_fallback: dict[str | None, list[RolloutDevice]] = defaultdict(list)
    for row in mine:
        by_fallback[row.fallback_release_id].append(row)
    for fallback, group in by_fallback.items():
        ids = [r.device_id for r in group]
        for start in range(0, len(ids), _CHUNK):
            desired.write_many(session, ids[start:start + _CHUNK],
                               release_id=fallback, mode="active", fallback_release_id=None,
                               rollout_id=rollout.rollout_id, now=now)
        back = fallback or "nothing (no previous release; it keeps what it runs)"
        move_rows(session, [r for r in group if DEVICE.allows(r.state, "roll_back")],
                  "roll_back", now, f"{why}; back to {back}")
        stay: dict[str, list[RolloutDevice]] = defaultdict(list)  # failed or expired rows
        for row in group:
            if not DEVICE.allows(row.state, "roll_back"):
                stay[f"{row.detail or row.state}; {why}; back to {back}"[:1024]].append(row)
        for detail, same in stay.items():
            update_rows(session, same, {"detail": detail, "updated_at": now})
    return [r.device_id for r in mine]


# -- reported states ---------------------------------------------------------------------------
def record_report(session: Session, device: Device, reported: ReportedState) -> str | None:
    """Move the device's row of its current rollout from a reported state; the new state."""
    return record_reports(session, [(device, reported)]).get(device.device_id)


# -- the tick ----------------------------------------------------------------------------------
def tick_if_waiting(session: Session, rollout_id: str, now: datetime | None = None) -> bool:
    """The periodic tick's first look, before any lock: True when the rollout only waits
    for its devices to report (the wave's ack gate, when it has one to update, is then
    written and committed, under the writers' lock for just that); False: run
    :func:`tick`. Ends the session's transaction either way."""
    now = now or utc_now()
    rollout = session.get(Rollout, rollout_id, populate_existing=True)
    found = (waiting_gate(session, rollout, policy_of(rollout), now)
             if rollout is not None and rollout.state == "in_progress" else None)
    session.rollback()  # the read ends here; what it saw is checked again under the lock
    if found is None:
        return False
    if found[1] is None:  # the last wave passed; pending devices are yet to report
        return True
    number, result = found[0].number, found[1].as_dict()
    rollout = lock_rollout(session, rollout_id)
    wave = session.exec(select(RolloutWave).where(
        RolloutWave.rollout_id == rollout_id, RolloutWave.number == number)).first()
    if (rollout is None or rollout.state != "in_progress" or rollout.current_wave != number
            or wave is None or wave.state != "running"):
        session.rollback()  # another tick moved it meanwhile: the full tick looks again
        return False
    wave.gates = [result]
    session.add(wave)
    session.commit()
    return True


def tick(session: Session, rollout_id: str, now: datetime | None = None) -> list[str]:
    """Advance one rollout as far as it can go now; the devices whose states to publish."""
    now = now or utc_now()
    rollout = lock_rollout(session, rollout_id)
    if rollout is None or rollout.state != "in_progress":
        return []
    out: list[str] = []
    policy = policy_of(rollout)
    if still_waiting(session, rollout, policy, now):
        return out
    rows = rows_of(session, rollout_id)
    devices = _devices(session, rows)
    for row in rows:
        device = devices[row.device_id]
        late = gates.overdue(_progress(row, device), policy.gates, now)
        if late == "failed":
            move_device(row, "fail", now,
                        f"no acknowledgement within {policy.gates.ack_timeout_s:g}s")
        elif late == "expired":
            move_device(row, "expire", now, "offline past the deadline")
        if late:
            session.add(row)
    waves = waves_of(session, rollout_id)
    while True:
        wave = next((w for w in waves if w.number == rollout.current_wave), None)
        if wave is None:  # cannot happen to rows written by this engine or migration 0004
            log.error("rollout has no wave %s", rollout.current_wave,
                      extra={"rollout_id": rollout_id})
            return out
        if wave.state == "planned":
            if _needs_approval(policy, wave):
                move_rollout(rollout, "wait_for_approval", now,
                             f"wave {wave.number} waits for `parkwatch rollouts approve`")
                break
            move_wave(wave, "start", now)
        if wave.state == "running":
            out += _release_due(session, rollout, policy, wave, wave_rows(rows, wave),
                                devices, now)
            results = _evaluate(session, rollout, policy, wave, rows, devices, now)
            wave.gates = [r.as_dict() for r in results]
            verdict = gates.outcome(results)
            if verdict == "running":
                break
            if verdict == "failed":
                out += _fail_wave(session, rollout, policy, wave, rows, results, now)
                break
            move_wave(wave, "pass", now)
            session.add(wave)
            log.info("rollout wave passed",
                     extra={"rollout_id": rollout_id, "wave": wave.number})
        later = [w for w in waves if w.number > wave.number]
        if later:
            rollout.current_wave = later[0].number
            _reset_after_shadow(wave, rows, now)
            continue
        if not any(r.state == "pending" for r in rows):
            move_rollout(rollout, "complete", now)
            log.info("rollout completed", extra={"rollout_id": rollout_id})
        break
    for wave in waves:
        session.add(wave)
    session.add(rollout)  # updated_at moves with its state (``touch``), not every tick
    return out


def _devices(session: Session, rows: Sequence[RolloutDevice]) -> dict[str, DeviceView]:
    """The rollout's devices as plain rows; no row locks (see ``release``)."""
    return read_devices(session, [r.device_id for r in rows])


def _progress(row: RolloutDevice, device: DeviceView) -> gates.DeviceProgress:
    since = device.status_at if device.online else None
    return gates.DeviceProgress(row.device_id, row.state, device.online, row.released_at,
                                row.acked_at, since)


def _needs_approval(policy: RolloutPolicy, wave: RolloutWave) -> bool:
    after = policy.approval_after_wave
    return after is not None and wave.number > after and wave.approved_by is None


def _release_due(
    session: Session, rollout: Rollout, policy: RolloutPolicy, wave: RolloutWave,
    rows: Sequence[RolloutDevice], devices: dict[str, DeviceView], now: datetime,
) -> list[str]:
    started = wave.started_at or now
    waiting = [r for r in rows if r.state == "planned"]
    sent = sum(1 for r in rows if r.released_at is not None and r.released_at >= started)
    budget = release_budget(policy.max_devices_per_minute,
                            (now - started).total_seconds(), sent, len(waiting))
    return release_many(session, rollout, wave, waiting[:budget], devices, now)


def _evaluate(
    session: Session, rollout: Rollout, policy: RolloutPolicy, wave: RolloutWave,
    rows: Sequence[RolloutDevice], devices: dict[str, DeviceView], now: datetime,
) -> list[gates.GateResult]:
    mine = [r for r in wave_rows(rows, wave) if r.state not in ("superseded", "cancelled")]
    progress = [_progress(r, devices[r.device_id]) for r in mine]
    telemetry = _telemetry(session, rollout, policy, wave, mine)
    return gates.evaluate_wave(wave.mode, progress, telemetry, policy.gates, now)


def _telemetry(
    session: Session, rollout: Rollout, policy: RolloutPolicy, wave: RolloutWave,
    rows: Sequence[RolloutDevice],
) -> gates.WaveTelemetry:
    """The wave's windows since each device got the release, and the baseline: the last
    windows of the previous release on the same devices before that."""
    acked = {r.device_id: r for r in rows if r.state == "acknowledged" and r.released_at}
    telemetry = gates.WaveTelemetry()
    if not acked or policy.gates.min_windows == 0:
        return telemetry
    since = min(r.released_at for r in acked.values() if r.released_at is not None)
    records = session.exec(
        select(TelemetryWindowRecord.device_id, TelemetryWindowRecord.received_at,
               TelemetryWindowRecord.payload)
        .where(col(TelemetryWindowRecord.device_id).in_(list(acked)),
               col(TelemetryWindowRecord.received_at) >= since)
        .order_by(col(TelemetryWindowRecord.received_at))
    ).all()
    for device_id, received_at, payload in records:
        released = acked[device_id].released_at
        if released is not None and received_at >= released:
            gates.add_candidate_window(telemetry, device_id, payload, wave.mode,
                                       rollout.release_id)
    if wave.mode == "active":
        _add_baseline(session, telemetry, list(acked.values()), policy.gates.baseline_windows)
    return telemetry


def _add_baseline(
    session: Session, telemetry: gates.WaveTelemetry, rows: Sequence[RolloutDevice],
    per_device: int,
) -> None:
    for row in rows:
        if row.fallback_release_id is None or row.released_at is None:
            continue
        payloads = session.exec(
            select(TelemetryWindowRecord.payload)
            .where(TelemetryWindowRecord.device_id == row.device_id,
                   TelemetryWindowRecord.release_id == row.fallback_release_id,
                   col(TelemetryWindowRecord.received_at) < row.released_at)
            .order_by(col(TelemetryWindowRecord.received_at).desc())
            .limit(per_device)
        ).all()
        for payload in payloads:
            gates.add_active_window(telemetry.baseline, payload)


def _fail_wave(
    session: Session, rollout: Rollout, policy: RolloutPolicy, wave: RolloutWave,
    rows: Sequence[RolloutDevice], results: Sequence[gates.GateResult], now: datetime,
) -> list[str]:
    failed = [r for r in results if r.status == "fail"]
    reason = f"wave {wave.number} failed gate {failed[0].name}: {failed[0].detail}"
    move_wave(wave, "fail", now)
    out: list[str] = []
    if policy.on_gate_failure == "rollback":
        released = [r for r in wave_rows(rows, wave) if r.state in RELEASED_ROW_STATES]
        out = revert_many(session, rollout, released, now, f"wave {wave.number} failed its gates")
        move_wave(wave, "roll_back", now)
        reason += "; the wave was rolled back"
    move_rollout(rollout, "fail_gate", now, reason)
    audit.record(session, ENGINE, "rollout.gate_failed", f"rollout:{rollout.rollout_id}",
                 wave=wave.number, gates=[r.as_dict() for r in failed],
                 rolled_back=policy.on_gate_failure == "rollback")
    log.warning("rollout paused: %s", reason, extra={"rollout_id": rollout.rollout_id})
    return out


def _reset_after_shadow(wave: RolloutWave, rows: Sequence[RolloutDevice], now: datetime) -> None:
    """After the shadow phase passes, its devices go again, this time serving the release."""
    if wave.number != 0:
        return
    for row in wave_rows(rows, wave):
        if DEVICE.allows(row.state, "shadow_passed"):
            move_device(row, "shadow_passed", now, "shadow phase passed")
            row.released_at = row.acked_at = None
