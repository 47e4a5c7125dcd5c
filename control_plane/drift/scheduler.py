"""The periodic work of ``parkwatch serve``: drift analysis, and telemetry retention
(at its own, longer interval), in one background thread.

A failed run (store down, a bad profile) is logged and retried at the next tick;
it never stops the server.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config.drift import DriftSettings
from ..config.retention import RetentionSettings
from ..services.telemetry_retention import apply_retention
from ..store.models import utc_now
from .analyser import run_analysis

log = logging.getLogger(__name__)


class DriftScheduler:
    """Runs ``run_analysis`` every ``settings.analysis_interval_s`` (and retention every
    ``retention.interval_s``) until ``stop()``."""

    def __init__(
        self, engine: Engine, settings: DriftSettings, retention: RetentionSettings | None = None
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.retention = retention
        self._last_retention = float("-inf")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drift-analysis", daemon=True)
        self.runs = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.analysis_interval_s):
            try:
                with Session(self.engine, expire_on_commit=False) as session:
                    run_analysis(session, self.settings)
                self.runs += 1
            except Exception:
                log.exception("periodic drift analysis failed; retrying at the next tick")
            self._maybe_retain()

    def _maybe_retain(self) -> None:
        rs = self.retention
        if rs is None or not rs.enabled:
            return
        if time.monotonic() - self._last_retention < rs.interval_s:
            return
        self._last_retention = time.monotonic()
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                apply_retention(session, rs, utc_now())
        except Exception:
            log.exception("telemetry retention failed; retrying at the next interval")


__all__ = ["DriftScheduler"]
