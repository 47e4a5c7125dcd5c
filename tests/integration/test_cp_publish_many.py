"""Desired states queued a batch at a time (``publish_many``), against a real Mosquitto.

A batch of desired states is one queued packet (two ``publish`` calls a device before:
each its own packet, wake-up and ``send``); the broker's PUBACKs are taken by paho's
bookkeeping (every message acknowledged, nothing left in flight); what paho's ``publish``
does at the edges holds: a full queue refuses the rest, and messages queued while
disconnected go out on connect.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.ingest.adapter import MqttAdapter
from control_plane.ingest.client import IngestClient
from control_plane.ingest.publish_many import BULK
from protocols import DesiredState
from tests.conftest import Mosquitto, wait_for
from tests.integration.test_cp_desired_order import retained

pytestmark = pytest.mark.skipif(not BULK, reason="this paho lacks the internals publish_many uses")
DEVICES = 300


def _states(n: int) -> list[DesiredState]:
    now = datetime.now(UTC)
    return [DesiredState(device_id=f"pm-{i:04d}", revision=7, release_id="r2",
                         rollout_id="ro-1", fallback_release_id="r1", issued_at=now)
            for i in range(n)]


def test_a_batch_of_desired_states_is_one_queued_packet_and_every_message_is_acked(
    mosquitto: Mosquitto,
) -> None:
    adapter = MqttAdapter(mosquitto.url, sa.create_engine("sqlite://"),
                          client_id=f"cp-{uuid.uuid4().hex[:6]}", subscribe=False,
                          clean_session=True)
    queued: list[int] = []
    real = adapter.client._packet_queue

    def counting(command: int, packet: Any, *args: Any, **kwargs: Any) -> Any:
        if command & 0xF0 == 0x30:
            queued.append(len(packet))
        return real(command, packet, *args, **kwargs)

    adapter.client._packet_queue = counting  # type: ignore[method-assign]
    adapter.start()
    try:
        assert adapter.wait_connected(30)
        states = _states(DEVICES)
        assert adapter.publish_desired_batch(states) == []  # returns once the broker has all
        assert len(queued) == 1  # 2 x 300 messages: one packet
        assert adapter.client._out_messages == {}  # every PUBACK taken, none in flight
        assert adapter.client._inflight_messages == 0
        got = retained(mosquitto, DEVICES)
        assert {d: (s.revision, s.release_id) for d, s in got.items()} == {
            s.device_id: (7, "r2") for s in states}
    finally:
        adapter.stop()


def _client(mosquitto: Mosquitto, max_queued: int = 0) -> IngestClient:
    client = IngestClient(CallbackAPIVersion.VERSION2, client_id=f"pm-{uuid.uuid4().hex[:6]}",
                          clean_session=True)
    client.max_queued_messages_set(max_queued)
    client.on_received = lambda *_a: None  # the client's own reads, as the adapter's
    client.connect_async("127.0.0.1", mosquitto.port)
    return client


def test_a_full_queue_refuses_the_rest_of_a_batch(mosquitto: Mosquitto) -> None:
    client = _client(mosquitto, max_queued=5)
    infos = client.publish_many([(f"pm/full/{i}", b"x") for i in range(8)], retain=True)
    # queued while disconnected, as publish: waiting to be sent on connect
    assert [i.rc for i in infos] == [paho.MQTT_ERR_NO_CONN] * 5 + [paho.MQTT_ERR_QUEUE_SIZE]


def test_messages_queued_while_disconnected_go_out_on_connect(mosquitto: Mosquitto) -> None:
    got: dict[str, bytes | bytearray] = {}
    lock = threading.Lock()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with lock:
            got[msg.topic] = msg.payload

    client = _client(mosquitto)
    infos = client.publish_many([(f"pm/later/{i}", f"p{i}".encode()) for i in range(50)],
                                retain=True)
    assert {i.rc for i in infos} == {paho.MQTT_ERR_NO_CONN}
    client.loop_start()
    probe = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
    try:
        # (their infos keep rc NO_CONN, as publish's do: paho's queue says when they went)
        wait_for(lambda: not client._out_messages, 30, "50 PUBACKs")
        probe.on_message = on_message
        probe.connect("127.0.0.1", mosquitto.port)
        probe.subscribe("pm/later/+", qos=1)
        probe.loop_start()
        wait_for(lambda: len(got) == 50, 30, "50 retained messages")
        assert got == {f"pm/later/{i}": f"p{i}".encode() for i in range(50)}
    finally:
        probe.loop_stop()
        probe.disconnect()
        client.disconnect()
        client.loop_stop()
