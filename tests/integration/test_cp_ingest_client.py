"""The ingest client against a real Mosquitto (in-flight limit 20): one wake-up reads every
message the socket holds, and a batch's PUBACKs sent in one write are each taken by the
broker (nothing is sent again after a reconnect, and the messages held back come)."""

from __future__ import annotations

import socket
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.ingest.client import SUPPORTED, IngestClient
from tests.conftest import Mosquitto, wait_for

pytestmark = pytest.mark.slow
TOPIC = "parkwatch/v1/devices/cam-1/telemetry"
INFLIGHT = 20  # Mosquitto's default max_inflight_messages


class Subscriber:
    """A manual-ack ``IngestClient`` driven by hand: ``loop`` is one wake-up of paho."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.got: list[paho.MQTTMessage] = []
        self.client = self._connect()

    def _connect(self) -> IngestClient:
        client = IngestClient(CallbackAPIVersion.VERSION2, client_id="ingest-client-test",
                              clean_session=False, manual_ack=True)
        client.on_message = lambda _c, _u, m: self.got.append(m)
        client.connect("127.0.0.1", self.port)
        client.subscribe(TOPIC, qos=1)
        for _ in range(20):  # CONNACK and SUBACK
            client.loop(0.1)
        return client

    def reconnect(self) -> None:
        self.client.disconnect()
        self.client = self._connect()

    def wait_buffered(self, n_bytes: int) -> None:
        """Until the socket holds ``n_bytes`` not read yet (the broker sent them)."""
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        wait_for(lambda: len(sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
                 >= n_bytes, 30, f"{n_bytes} bytes from the broker")


def publish(port: int, n: int) -> None:
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="ingest-client-pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    infos = [pub.publish(TOPIC, f"m{i:04d}".encode(), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    pub.disconnect()
    pub.loop_stop()


@pytest.mark.skipif(not SUPPORTED, reason="this paho lacks the internals the client uses")
def test_one_wake_up_reads_every_message_and_one_write_acknowledges_them(
    mosquitto: Mosquitto,
) -> None:
    sub = Subscriber(mosquitto.port)
    publish(mosquitto.port, 2 * INFLIGHT)
    # What the broker sends before any PUBACK: its in-flight limit of messages of (fixed
    # header 2, topic 2 + its length, packet id 2, payload 5) bytes.
    sub.wait_buffered(INFLIGHT * (len(TOPIC) + 11))
    sub.client.loop(1.0)
    assert [m.payload for m in sub.got] == [f"m{i:04d}".encode() for i in range(INFLIGHT)]

    sub.client.ack_many([m.mid for m in sub.got])
    deadline = time.monotonic() + 30
    while len(sub.got) < 2 * INFLIGHT and time.monotonic() < deadline:
        sub.client.loop(0.1)  # the PUBACKs out, and the messages they made room for in
    assert [m.payload for m in sub.got] == [f"m{i:04d}".encode() for i in range(2 * INFLIGHT)]
    sub.client.ack_many([m.mid for m in sub.got[INFLIGHT:]])
    for _ in range(5):
        sub.client.loop(0.1)

    sub.reconnect()  # a message not acknowledged would be sent again now
    sub.got.clear()
    for _ in range(10):
        sub.client.loop(0.1)
    assert sub.got == []
    sub.client.disconnect()


@pytest.mark.skipif(not SUPPORTED, reason="this paho lacks the internals the client uses")
def test_publishes_the_client_parses_come_in_order_with_those_paho_parses(
    mosquitto: Mosquitto,
) -> None:
    sub = Subscriber(mosquitto.port)
    parsed: list[tuple[str, bytes, int, int, bool]] = []
    got: list[bytes] = []  # payloads in arrival order, from either path
    sub.client.on_message = lambda _c, _u, m: got.append(m.payload)
    sub.client.on_received = lambda *message: (parsed.append(message), got.append(message[1]))
    # payloads whose remaining lengths take one, two and three bytes
    sizes = [5, 300, 20_000] * (INFLIGHT // 3) + [5] * (INFLIGHT % 3)
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="ingest-client-pub")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    payloads = [bytes([i]) * n for i, n in enumerate(sizes)]
    for info in [pub.publish(TOPIC, p, qos=1) for p in payloads]:
        info.wait_for_publish(30)
    pub.disconnect()
    pub.loop_stop()
    deadline = time.monotonic() + 30
    while len(got) < INFLIGHT and time.monotonic() < deadline:
        sub.client.loop(0.1)
    assert got == payloads
    # paho reads the first packet of each read; the client the whole ones after it
    assert len(parsed) >= INFLIGHT // 2
    assert all(m[0] == TOPIC and m[3] == 1 and not m[4] for m in parsed)
    sub.client.ack_many([m[2] for m in parsed])
    for _ in range(5):
        sub.client.loop(0.1)
    sub.reconnect()  # only the messages paho parsed, not acknowledged, come again
    for _ in range(10):
        sub.client.loop(0.1)
    assert sorted(m.payload for m in sub.got) == sorted(set(payloads) - {m[1] for m in parsed})
    sub.client.disconnect()
