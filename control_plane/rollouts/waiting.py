"""The tick's shortcut while a wave waits for acknowledgements.

At 10,000 devices most ticks of a rollout find the same thing: the current wave sent
its release to every device, some are still to report, no deadline can have passed.
Reading every row and locking every device for that would stall ingest, whose reports
are what the wave waits for. Two aggregate queries establish that nothing but the ack
gate's counts can change, and the tick records those and stops. Whenever anything else
might move (a row to release, a failed row, a deadline within reach, every online
device reported) the full tick runs.

The same holds while only offline devices are pending: every device of the wave
offline (the gate waits), or the last wave passed with some offline devices still to
report or expire (the rollout completes only then, and a tick has nothing to write).
Until the first deadline, or a report, nothing moves.

The periodic tick looks before it locks (``engine.tick_if_waiting``): on SQLite the
writers' lock is the database's one write lock, which ingest needs for every run of
reported states, so the aggregates run without it and the lock is held only to write
the gate's counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..config.rollout_policy import RolloutPolicy
from ..store.models import Device, Rollout, RolloutDevice, RolloutWave
from . import gates

_GONE = ("superseded", "cancelled")  # rows that left the wave (as the full tick ignores)


def waiting_gate(
    session: Session, rollout: Rollout, policy: RolloutPolicy, now: datetime
) -> tuple[RolloutWave, gates.GateResult | None] | None:
    """The current wave and its ack gate when a full tick would only find the wave waiting
    for devices to report (the gate None: the last wave passed, nothing to write); None:
    run the full tick. Reads only."""
    wave = session.exec(select(RolloutWave).where(
        RolloutWave.rollout_id == rollout.rollout_id,
        RolloutWave.number == rollout.current_wave)).first()
    if wave is None or wave.state not in ("running", "passed"):
        return None
    if not _before_any_deadline(session, rollout, policy, now):
        return None
    if wave.state == "passed":
        # A tick moves past a passed wave at once, so this is the last one unless a
        # wave was added since; its pending rows end the rollout by reporting or expiring.
        later = session.exec(select(func.count()).select_from(RolloutWave).where(
            RolloutWave.rollout_id == rollout.rollout_id,
            RolloutWave.number > wave.number)).one()
        return (wave, None) if not later else None
    number = 1 if wave.number == 0 else wave.number  # the shadow phase runs on wave 1
    counts: Counter[tuple[str, bool]] = Counter()
    for state, online, n in session.exec(
        select(RolloutDevice.state, Device.online, func.count())
        .join(Device, col(Device.device_id) == col(RolloutDevice.device_id))
        .where(RolloutDevice.rollout_id == rollout.rollout_id, RolloutDevice.wave == number,
               col(RolloutDevice.state).not_in(_GONE))
        .group_by(col(RolloutDevice.state), col(Device.online))
    ).all():
        counts[(state, bool(online))] = int(n)
    states = {state for state, _ in counts}
    if "failed" in states or "planned" in states:
        return None
    # "wait" with no online device pending: every device of the wave is offline and none
    # acknowledged; the full tick would write the same gate.
    result = gates.ack_gate_of(counts)
    return (wave, result) if result.status == "wait" else None


def _before_any_deadline(
    session: Session, rollout: Rollout, policy: RolloutPolicy, now: datetime
) -> bool:
    """Whether some row of the rollout is pending and none can be overdue yet (of any
    wave): an online device's deadline is its release plus the ack timeout at the
    earliest (coming online later only pushes it back), an offline one's its release
    plus the offline deadline."""
    limits = {True: policy.gates.ack_timeout_s, False: policy.gates.offline_deadline_s}
    found = False
    for online, earliest in session.exec(
        select(Device.online, func.min(RolloutDevice.released_at))
        .join(Device, col(Device.device_id) == col(RolloutDevice.device_id))
        .where(RolloutDevice.rollout_id == rollout.rollout_id,
               RolloutDevice.state == "pending")
        .group_by(col(Device.online))
    ).all():
        if earliest is None or (now - earliest).total_seconds() > limits[bool(online)]:
            return False
        found = True
    return found


def still_waiting(
    session: Session, rollout: Rollout, policy: RolloutPolicy, now: datetime
) -> bool:
    """True (and the wave's ack gate brought up to date) when a full tick would only find
    the current wave waiting for devices to report; False: run the full tick."""
    found = waiting_gate(session, rollout, policy, now)
    if found is None:
        return False
    wave, result = found
    if result is not None:
        wave.gates = [result.as_dict()]
        session.add(wave)
    return True


__all__ = ["still_waiting", "waiting_gate"]
