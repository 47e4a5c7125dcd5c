"""The periodic work of ``parkwatch serve``: folding past days' rollup hours into day rows,
drift analysis, and retention of telemetry, snapshots and dead letters (at its own,
longer interval), in one periodic task.

A failed run (store down, a bad profile) is logged and retried at the next tick; it
never stops the server, and a failed analysis does not hold retention back. On
PostgreSQL one replica holds the task's lease and runs both; the others stand by. Each
run also keeps the devices' clock-skew alerts in step (``services/clocks.py``).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config.drift import DriftSettings
from ..config.retention import RetentionSettings
from ..lifecycle import Lease, PeriodicTask
from ..services import snapshots, telemetry_rollup_fold
from ..services.clocks import reconcile_skew_alerts
from ..services.telemetry_retention import apply_retention, prune_dead_letters
from ..store.artifacts import ArtifactStore
from ..store.models import utc_now
from .analyser import run_analysis

log = logging.getLogger(__name__)


def drift_task(engine: Engine, settings: DriftSettings,
               retention: RetentionSettings | None = None, *,
               lease: Lease | None = None, clock_skew_alert_s: float = 0.0,
               artifacts: ArtifactStore | None = None) -> PeriodicTask:
    """``run_analysis`` every ``settings.analysis_interval_s``, and retention after it once
    ``retention.interval_s`` has passed since the last retention."""
    last_retention = float("-inf")

    def retain() -> None:
        nonlocal last_retention
        if retention is None or not retention.enabled:
            return
        if time.monotonic() - last_retention < retention.interval_s:
            return
        last_retention = time.monotonic()
        try:
            with Session(engine, expire_on_commit=False) as session:
                apply_retention(session, retention, utc_now())
                if artifacts is not None:
                    snapshots.prune(session, artifacts, retention.snapshots_keep_days,
                                    utc_now())
                gone = prune_dead_letters(session, retention.dead_letters_keep_days, utc_now())
                if gone:  # kept messages never replayed: say so, they are lost now
                    log.warning("dead letters past retention deleted unreplayed",
                                extra={"count": gone})
        except Exception:
            log.exception("telemetry retention failed; retrying at the next interval")

    def check_clocks() -> None:
        try:
            with Session(engine) as session:
                reconcile_skew_alerts(session, clock_skew_alert_s)
                session.commit()
        except Exception:
            log.exception("clock skew alerts failed; retrying at the next interval")

    def fold() -> None:
        try:
            with Session(engine, expire_on_commit=False) as session:
                telemetry_rollup_fold.fold(session, utc_now())
        except Exception:  # readers take unfolded days from their hours meanwhile
            log.exception("folding rollup days failed; retrying at the next interval")

    def analyse() -> None:
        try:
            fold()
            with Session(engine, expire_on_commit=False) as session:
                run_analysis(session, settings)
        finally:
            retain()
            check_clocks()

    return PeriodicTask("drift-analysis", settings.analysis_interval_s, analyse, lease=lease)


__all__ = ["drift_task"]
