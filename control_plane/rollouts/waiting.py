"""The tick's shortcut while a wave waits for acknowledgements.

At 10,000 devices most ticks of a rollout find the same thing: the current wave sent
its release to every device, some are still to report, no deadline can have passed.
Reading every row and locking every device for that would stall ingest, whose reports
are what the wave waits for. Two aggregate queries establish that nothing but the ack
gate's counts can change, and the tick records those and stops. Whenever anything else
might move (a row to release, a failed row, a deadline within reach, every online
device reported) the full tick runs.

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
) -> tuple[RolloutWave, gates.GateResult] | None:
    """The current wave and its ack gate when a full tick would only find the wave waiting
    for online devices to report; None: run the full tick. Reads only."""
    wave = session.exec(select(RolloutWave).where(
        RolloutWave.rollout_id == rollout.rollout_id,
        RolloutWave.number == rollout.current_wave)).first()
    if wave is None or wave.state != "running":
        return None
    earliest = session.exec(select(func.min(RolloutDevice.released_at)).where(
        RolloutDevice.rollout_id == rollout.rollout_id,
        RolloutDevice.state == "pending")).one()
    limit_s = min(policy.gates.ack_timeout_s, policy.gates.offline_deadline_s)
    # No pending row of any wave is overdue before this (a device online since later
    # only pushes its deadline back).
    if earliest is None or (now - earliest).total_seconds() > limit_s:
        return None
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
    result = gates.ack_gate_of(counts)
    if result.status != "wait" or not counts[("pending", True)]:
        return None
    return wave, result


def still_waiting(
    session: Session, rollout: Rollout, policy: RolloutPolicy, now: datetime
) -> bool:
    """True (and the wave's ack gate brought up to date) when a full tick would only find
    the current wave waiting for online devices to report; False: run the full tick."""
    found = waiting_gate(session, rollout, policy, now)
    if found is None:
        return False
    wave, result = found
    wave.gates = [result.as_dict()]
    session.add(wave)
    return True


__all__ = ["still_waiting", "waiting_gate"]
