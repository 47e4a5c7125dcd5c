"""Gauges read from the store (rollout states, devices online, open alerts).

The store, not one process's memory, is the truth when several API and ingest
workers run, so each scrape of ``/metrics`` refreshes these gauges, at most once
per ``min_interval`` seconds per process.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..metrics import ALERTS_OPEN, DEVICES, DEVICES_ONLINE, ROLLOUT_DEVICES, ROLLOUTS
from ..rollouts.states import DEVICE, ROLLOUT
from .models import Alert, Device, Rollout, RolloutDevice

log = logging.getLogger(__name__)
# Every state of the rollout machines (rollouts/states.py) has a series from the first
# scrape on, zero until a rollout reaches it.
SEVERITIES = ("info", "warning", "critical")


def refresh(session: Session) -> None:
    """Set every store gauge from one consistent read."""
    counts = dict(session.exec(select(Rollout.state, func.count()).group_by(Rollout.state)).all())
    for state in sorted(ROLLOUT.states | set(counts)):
        ROLLOUTS.labels(state).set(counts.get(state, 0))
    per_device = dict(
        session.exec(select(RolloutDevice.state, func.count()).group_by(RolloutDevice.state)).all()
    )
    for state in sorted(DEVICE.states | set(per_device)):
        ROLLOUT_DEVICES.labels(state).set(per_device.get(state, 0))
    DEVICES.set(session.exec(select(func.count()).select_from(Device)).one())
    DEVICES_ONLINE.set(
        session.exec(
            select(func.count()).select_from(Device).where(col(Device.online).is_(True))
        ).one()
    )
    alerts = dict(
        session.exec(
            select(Alert.severity, func.count())
            .where(col(Alert.state) != "resolved")
            .group_by(Alert.severity)
        ).all()
    )
    for severity in sorted(set(SEVERITIES) | set(alerts)):
        ALERTS_OPEN.labels(severity).set(alerts.get(severity, 0))


class StoreGauges:
    """Refreshes the gauges from ``engine``, throttled; a store error keeps the old values."""

    def __init__(self, engine: Engine, min_interval: float = 5.0) -> None:
        self.engine = engine
        self.min_interval = min_interval
        self._last = float("-inf")
        self._lock = threading.Lock()

    def maybe_refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.min_interval:
                return
            self._last = now
        try:
            with Session(self.engine) as session:
                refresh(session)
        except Exception as exc:
            log.warning("store gauges not refreshed: %s", exc)
