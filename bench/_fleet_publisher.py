"""The simulated fleet's publisher for ``fleet_ingest.py`` and its broker ceilings: one
MQTT connection that sends every window at QoS 1 with at most ``INFLIGHT``
unacknowledged, and the CPU seconds that cost it.

Two kinds, the same packets on the wire:

- ``paho``: ``Client.publish`` from this thread, paho's network thread sending them and
  reading the PUBACKs. Its cost a message moves with the broker's pace: past the
  in-flight limit each message is queued, and every PUBACK walks the in-flight messages
  to send the next queued one from the network thread (paho 2.2's ``_update_inflight``),
  so a slower consumer downstream (ingest, a loaded machine) makes the publisher dearer.
- ``raw``: every PUBLISH packet built before the clock starts, written from this thread
  as PUBACKs make room and the PUBACKs counted a read at a time: a few microseconds of
  Python a message whatever the broker's queue, so the publisher takes less of the
  shared cores, and the same share, in the ceiling and in ingest.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import Protocol

import paho.mqtt.client as paho
from _fleet_rig import thread_cpu  # bench/ is on sys.path: scripts run from it
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.ingest.publish_many import publish_packet, remaining_length

INFLIGHT = 100  # unacknowledged messages the publisher allows itself (mosquitto_pub -M too)
KINDS = ("paho", "raw")
PUBACK = 0x40


class FleetPublisher(Protocol):
    def send(self) -> None:
        """Publish every loaded message; may return before the broker acknowledged all."""

    def cpu_seconds(self) -> float:
        """CPU seconds spent sending so far (read before ``close``)."""

    def close(self) -> None: ...


def open_publisher(kind: str, port: int, payloads: Sequence[tuple[str, bytes]]
                   ) -> FleetPublisher:
    """A connected publisher of ``kind`` with ``payloads`` (topic, payload) loaded."""
    if kind == "raw":
        return RawPublisher(port, payloads)
    return PahoPublisher(port, payloads)


def network_tid(client: paho.Client) -> int:
    """The thread id of ``client``'s network loop (started by ``loop_start``)."""
    thread = client._thread
    assert thread is not None and thread.native_id is not None
    return thread.native_id


class PahoPublisher:
    """``Client.publish`` of each message; its CPU is this thread's publish calls and
    paho's network thread, which sends them."""

    def __init__(self, port: int, payloads: Sequence[tuple[str, bytes]]) -> None:
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fleet-{port}")
        self._client.max_inflight_messages_set(INFLIGHT)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._payloads = payloads
        self._tid = network_tid(self._client)
        self._network = thread_cpu(self._tid)
        self._calls = 0.0

    def send(self) -> None:
        started = time.thread_time()
        for topic, payload in self._payloads:
            self._client.publish(topic, payload, qos=1)
        self._calls += time.thread_time() - started

    def cpu_seconds(self) -> float:
        return self._calls + thread_cpu(self._tid) - self._network

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class RawPublisher:
    """MQTT 3.1.1 on a plain socket: CONNECT (clean session, no keepalive), then the
    prebuilt PUBLISH packets with at most ``INFLIGHT`` unacknowledged; ``send`` returns
    once the broker acknowledged every one."""

    def __init__(self, port: int, payloads: Sequence[tuple[str, bytes]]) -> None:
        self._packets = [publish_packet(topic.encode(), payload, i % 65_535 + 1, retain=False)
                         for i, (topic, payload) in enumerate(payloads)]
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=600)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client_id = f"fleet-raw-{port}".encode()
        body = (b"\x00\x04MQTT\x04\x02\x00\x00" + len(client_id).to_bytes(2, "big")
                + client_id)
        self._sock.sendall(b"\x10" + remaining_length(len(body)) + body)
        connack = self._sock.recv(4)
        if connack != b"\x20\x02\x00\x00":
            raise ConnectionError(f"the broker refused the fleet publisher: {connack!r}")
        self._cpu = 0.0

    def send(self) -> None:
        started = time.thread_time()
        packets, n = self._packets, len(self._packets)
        sent = acked = 0
        rest = b""
        while acked < n:
            room = min(n, acked + INFLIGHT) - sent
            if room > 0:
                self._sock.sendall(b"".join(packets[sent:sent + room]))
                sent += room
            data = rest + self._sock.recv(65_536)
            if not data:
                raise ConnectionError("the broker closed the fleet publisher's connection")
            whole = len(data) - len(data) % 4
            if data[0:whole:4] != bytes((PUBACK,)) * (whole // 4):
                raise ConnectionError("the broker sent the fleet publisher a packet other "
                                      "than PUBACK")
            acked += whole // 4
            rest = data[whole:]
        self._cpu += time.thread_time() - started

    def cpu_seconds(self) -> float:
        return self._cpu

    def close(self) -> None:
        try:
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self._sock.close()
