"""Sending a closed telemetry window: numbered and stamped with the drop counts as the
outbox stores it, a ``telemetry_dropped`` event when anything was lost, and the local
handler (metrics, release health) told whether or not the window could be stored.

Called by the inference thread only (``pipeline.InferenceLoop``); no locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocols import TelemetryWindow, encode, telemetry_topic

from .events import EventLog
from .outbox import Dropped, Outbox

log = logging.getLogger(__name__)

WindowHandler = Callable[[TelemetryWindow], None]


class WindowSender:
    def __init__(self, device_id: str, outbox: Outbox, events: EventLog,
                 on_window: WindowHandler | None, previous_protocol: bool) -> None:
        self._outbox = outbox
        self._events = events
        self._topic = telemetry_topic(device_id)
        self._on_window = on_window
        self._previous_protocol = previous_protocol
        self.windows_closed = 0  # stored or dropped: every one is delivered or counted
        self._last_seq = 0  # of the last stored window (local metrics of an unstored one)

    def send(self, body: TelemetryWindow) -> None:
        """Queue ``body`` (a window without its seq and drop counts); local metrics and
        release health see it whether or not it could be stored."""
        window = body

        def stamp(seq: int, dropped: Dropped) -> bytes:
            nonlocal window
            window = body.model_copy(update={
                "seq": seq, "dropped_windows": dropped.windows,
                # the previous protocol has no field for them: the event below names them
                "dropped_events": 0 if self._previous_protocol else dropped.events,
                "instance": None if self._previous_protocol else self._outbox.instance})
            return encode(window)

        self.windows_closed += 1
        if self._outbox.put_stamped("telemetry", self._topic, stamp):
            self._last_seq = window.seq
            lost = Dropped(window.dropped_windows, window.dropped_events)
        else:  # dropped and counted: the next stored window reports it
            window, lost = body.model_copy(update={"seq": self._last_seq}), Dropped()
        if lost != Dropped():
            self._events.emit("telemetry_dropped", detail=(
                f"{lost.windows} telemetry windows and {lost.events} events were dropped "
                "(outbox bound or full disk)"))
        if self._on_window is not None:
            try:
                self._on_window(window)
            except Exception:
                log.exception("window handler failed")
