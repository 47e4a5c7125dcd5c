"""The rollout engine's clock: a periodic task that ticks every rollout in progress.

Runs in each process with the HTTP API (roles ``all`` and ``api``), since those hold a
publisher for desired states. Ticks are idempotent and lock each rollout's row, so
several API processes may run one each; the state lives in the store, so a restart
simply picks up where the last tick left off.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..lifecycle import PeriodicTask
from .service import DesiredStatePublisher, tick_all


def rollout_engine_task(engine: Engine, publisher: DesiredStatePublisher, interval_s: float
                        ) -> PeriodicTask:
    def tick() -> int:
        with Session(engine, expire_on_commit=False) as session:
            return tick_all(session, publisher)

    return PeriodicTask("rollout-engine", interval_s, tick)
