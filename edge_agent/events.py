"""Device events: numbered as the outbox stores them; and the detection debouncer."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from protocols import DeviceEvent, ProtocolError, encode, events_topic
from protocols.messages import EventKind

from .outbox import Dropped, Outbox

log = logging.getLogger(__name__)


class EventLog:
    """Builds ``DeviceEvent``s with a persistent per-device ``seq`` and queues them."""

    def __init__(self, device_id: str, outbox: Outbox, *, previous_protocol: bool = False) -> None:
        self.device_id = device_id
        self._outbox = outbox
        # The previous protocol has no instance field: its control planes dedup on seq alone.
        self._instance = None if previous_protocol else outbox.instance
        self._topic = events_topic(device_id)
        self.produced = 0  # stored or dropped: every one is delivered or counted

    def emit(self, kind: EventKind, **fields: Any) -> DeviceEvent | None:
        """Queue one event; None when it is invalid (logged) or could not be stored (the
        outbox counts it as dropped and the next telemetry window reports it)."""
        if isinstance(fields.get("detail"), str):
            fields["detail"] = fields["detail"][:1024]
        built: DeviceEvent | None = None

        def stamp(seq: int, dropped: Dropped) -> bytes:
            nonlocal built
            built = DeviceEvent(device_id=self.device_id, seq=seq, kind=kind,
                                instance=self._instance, **fields)
            return encode(built)

        try:
            stored = self._outbox.put_stamped("event", self._topic, stamp)
        except (ProtocolError, ValueError) as exc:
            log.error("could not queue %s event: %s", kind, exc)
            return None
        self.produced += 1
        if not stored:
            return None
        log.info("event %s", kind, extra={k: v for k, v in fields.items() if v is not None})
        return built


class Debouncer:
    """One detection when a label holds for ``persist`` inferences, not one per frame.

    A label counts while it is the top class with at least ``min_confidence``;
    anything else breaks the run. After a label fired it fires again only once
    a different label (or uncertainty) has held for ``persist`` inferences.
    """

    def __init__(self, persist: int, min_confidence: float, ignore: Collection[str] = ()) -> None:
        self.persist = persist
        self.min_confidence = min_confidence
        self.ignore = frozenset(ignore)
        self._candidate: str | None = None
        self._run = 0
        self._current: str | None = None

    def update(self, label: str, confidence: float) -> str | None:
        """Feed one inference; return the label when a detection starts, else None."""
        seen = label if confidence >= self.min_confidence else None
        if seen == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = seen, 1
        if self._run < self.persist or self._candidate == self._current:
            return None
        self._current = self._candidate
        if self._current is None or self._current in self.ignore:
            return None
        return self._current
