"""The fleet ingest benchmark's raw publisher on a real Mosquitto: every message arrives,
in order, with its topic and payload, past the publisher's in-flight window."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import Mosquitto

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from _fleet_publisher import INFLIGHT, open_publisher


def test_the_raw_publisher_delivers_every_message_in_order(mosquitto: Mosquitto) -> None:
    messages = [(f"parkwatch/v1/devices/cam-{i % 7}/telemetry", f'{{"seq": {i}}}'.encode()
                 * (1 + i % 300)) for i in range(INFLIGHT * 5 + 3)]
    got: list[tuple[str, bytes]] = []
    done, subscribed = threading.Event(), threading.Event()

    def on_message(_c: paho.Client, _u: object, m: paho.MQTTMessage) -> None:
        got.append((m.topic, m.payload))
        if len(got) == len(messages):
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    try:
        sub.subscribe("parkwatch/v1/devices/+/telemetry", qos=1)
        assert subscribed.wait(10)
        publisher = open_publisher("raw", mosquitto.port, messages)
        publisher.send()  # returns once the broker acknowledged every message
        assert publisher.cpu_seconds() > 0
        publisher.close()
        assert done.wait(30), f"{len(got)} of {len(messages)} arrived"
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert got == messages
