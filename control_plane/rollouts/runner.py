"""The rollout engine's clock: a thread that ticks every rollout in progress.

Runs in each process with the HTTP API (roles ``all`` and ``api``), since those hold a
publisher for desired states. Ticks are idempotent and lock each rollout's row, so
several API processes may run one each; the state lives in the store, so a restart
simply picks up where the last tick left off.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine
from sqlmodel import Session

from .service import DesiredStatePublisher, tick_all

log = logging.getLogger(__name__)


class RolloutRunner:
    def __init__(self, engine: Engine, publisher: DesiredStatePublisher, interval_s: float
                 ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollout-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("rollout engine started", extra={"interval_s": self.interval_s})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def tick_once(self) -> int:
        with Session(self.engine, expire_on_commit=False) as session:
            return tick_all(session, self.publisher)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick_once()
            except Exception:  # a store outage must not end the engine
                log.exception("rollout engine tick failed")
