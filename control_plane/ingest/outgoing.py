"""Desired states on their way to the broker: waiting for their PUBACKs, or for room.

paho refuses a QoS 1 publish (``MQTT_ERR_QUEUE_SIZE``) once its outgoing queue, in
flight included, holds ``max_queued_messages``; a wave of desired states can be larger
(two messages a device). ``Outgoing`` remembers the desired-state messages queued and
not yet acknowledged, so a publisher can wait until the queue has room again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import paho.mqtt.client as paho

log = logging.getLogger(__name__)


def done(info: paho.MQTTMessageInfo) -> bool:
    """Acknowledged by the broker, or never queued."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return True


def wait_published(sent: Sequence[paho.MQTTMessageInfo], connected: Callable[[], bool],
                   timeout: float) -> None:
    """Until the broker acknowledged every message of ``sent`` that was queued, the
    client disconnected (paho resends on reconnect) or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    for info in sent:
        try:
            while not info.is_published() and connected():
                if time.monotonic() > deadline:
                    log.warning("the broker did not acknowledge %d desired states within "
                                "%g s; they stay queued", len(sent), timeout)
                    return
                info.wait_for_publish(0.5)
        except (RuntimeError, ValueError):
            continue  # not queued: the caller sends it again


class Outgoing:
    """The desired-state messages queued and not yet acknowledged, oldest first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the client's max_queued_messages
        self._infos: deque[paho.MQTTMessageInfo] = deque()
        self._lock = threading.Lock()

    def add(self, info: paho.MQTTMessageInfo) -> None:
        self.extend([info])

    def extend(self, infos: Sequence[paho.MQTTMessageInfo]) -> None:
        with self._lock:
            # Acknowledged ones go as new ones come (not only when the queue is full), and
            # behind one stuck message the list is swept: it holds about the unacknowledged.
            while self._infos and done(self._infos[0]):
                self._infos.popleft()
            if len(self._infos) > 2 * self.limit:
                self._infos = deque(i for i in self._infos if not done(i))
            self._infos.extend(infos)

    def __len__(self) -> int:
        return len(self._infos)

    def wait_for_room(self, connected: Callable[[], bool], timeout: float) -> bool:
        """Until at most half the limit is waiting for PUBACKs. False when disconnected or
        when the broker acknowledged nothing for ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                while self._infos and done(self._infos[0]):
                    self._infos.popleft()
                    deadline = time.monotonic() + timeout  # progress
                oldest = self._infos[0] if self._infos else None
                waiting = len(self._infos)
            if oldest is None or waiting <= self.limit // 2:
                return True
            if not connected() or time.monotonic() > deadline:
                return False
            oldest.wait_for_publish(0.2)
