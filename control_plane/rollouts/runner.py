"""The rollout engine's clock: a periodic task that ticks every rollout in progress.

Runs in each process with the HTTP API (roles ``all`` and ``api``), since those hold a
publisher for desired states. On PostgreSQL the replicas share one lease
(``store/leases.py``): one of them ticks, the others stand by and take over within an
interval when it dies. Ticks are idempotent and lock each rollout's row besides, and the
state lives in the store, so a restart or a takeover picks up where the last tick left off.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..lifecycle import Lease, PeriodicTask
from .service import DesiredStatePublisher, tick_all


def rollout_engine_task(engine: Engine, publisher: DesiredStatePublisher, interval_s: float,
                        *, lease: Lease | None = None) -> PeriodicTask:
    def tick() -> int:
        with Session(engine, expire_on_commit=False) as session:
            return tick_all(session, publisher)

    return PeriodicTask("rollout-engine", interval_s, tick, lease=lease)
