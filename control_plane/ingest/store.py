"""What ingest's writer stores: each run of messages in one transaction.

The pipeline (``batch``) cuts a batch of received messages into runs: consecutive
telemetry windows, and consecutive device messages (status, reported states, events:
during a rollout they alternate, so a whole batch is usually one run). Each run here is
one transaction of a few set-based statements, committed before the pipeline
acknowledges any of its messages; whatever must follow the commit (desired states that
go out again after the store went back in time) follows it here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from protocols import TelemetryWindow

from ..rollouts import service as rollouts
from ..rollouts.desired import DesiredStatePublisher
from ..services import telemetry
from ..services.device_messages import DeviceMessage, store_run
from ..store.db import session_scope

log = logging.getLogger(__name__)


class IngestStore:
    """Writes runs of received messages into the store behind ``engine``; ``publisher``
    sends the desired states a report shows to be behind."""

    def __init__(self, engine: Engine, publisher: DesiredStatePublisher) -> None:
        self.engine = engine
        self.publisher = publisher

    def write_windows(self, windows: Sequence[TelemetryWindow], *,
                      received_at: datetime | None = None) -> Counter[str]:
        """``received_at``: when they arrived, if not now (a dead letter replayed)."""
        with session_scope(self.engine) as session:
            return telemetry.ingest_windows(session, windows, received_at=received_at)

    def write_device(self, messages: Sequence[DeviceMessage]) -> Counter[tuple[str, str]]:
        """Statuses, reported states and events, with the rollout rows the reports move and
        the epoch check, in one transaction; how many had each (kind, outcome)."""
        with session_scope(self.engine) as session:
            run = store_run(session, messages)
            rollouts.on_reported_many(session, run.reports)
            behind = rollouts.catch_up_many(session, run.reports)
        if behind:  # the store went back in time: its states go out again, newer
            with session_scope(self.engine) as session:
                rollouts.publish_current(session, self.publisher, behind)
        unknown = sum(n for (_kind, outcome), n in run.outcomes.items()
                      if outcome == "unknown_device")
        if unknown:
            log.warning("messages from unknown devices dropped", extra={"count": unknown})
        return run.outcomes


__all__ = ["IngestStore"]
