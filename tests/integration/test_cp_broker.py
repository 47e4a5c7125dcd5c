"""The embedded amqtt broker: paho clients get retained messages and QoS 1 delivery."""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.broker.embedded import EmbeddedBroker
from control_plane.config import ControlPlaneSettings
from control_plane.errors import ConfigError
from tests.conftest import free_port, wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("127.0.0.1", free_port())
    b.start()
    yield b
    b.stop()


def _client(port: int, received: list[paho.MQTTMessage] | None = None,
            got: threading.Event | None = None, subscribe: str | None = None) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    if received is not None and got is not None:
        def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
            received.append(msg)
            got.set()
        c.on_message = on_message
    if subscribe is not None:
        c.on_connect = lambda cl, _u, _f, _r, _p: cl.subscribe(subscribe, qos=1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_retained_and_qos1(broker: EmbeddedBroker) -> None:
    pub = _client(broker.port)
    info = pub.publish("parkwatch/v1/devices/cam-1/desired", b'{"r":1}', qos=1, retain=True)
    info.wait_for_publish(10)
    assert info.is_published()

    received: list[paho.MQTTMessage] = []
    got = threading.Event()
    sub = _client(broker.port, received, got, subscribe="parkwatch/v1/devices/+/desired")
    assert got.wait(10), "late subscriber did not get the retained message"
    assert (received[0].payload, received[0].retain, received[0].qos) == (b'{"r":1}', True, 1)

    got.clear()
    pub.publish("parkwatch/v1/devices/cam-2/desired", b"live", qos=1).wait_for_publish(10)
    assert got.wait(10)
    live = received[-1]
    assert (live.topic, live.payload, live.retain, live.qos) == (
        "parkwatch/v1/devices/cam-2/desired", b"live", False, 1)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()


def test_port_in_use_is_a_config_error(broker: EmbeddedBroker) -> None:
    with pytest.raises(ConfigError, match="embedded_broker_port"):
        EmbeddedBroker("127.0.0.1", broker.port).start(timeout=5)


def test_app_without_mqtt_url_runs_its_own_broker(tmp_path: Path) -> None:
    """`parkwatch serve` with no broker configured: the app starts amqtt and connects to it."""
    from control_plane.api import create_app

    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path, embedded_broker_port=port)
    with TestClient(create_app(settings)) as client:
        state = client.app.state.parkwatch  # type: ignore[attr-defined]
        assert state.mqtt.wait_connected(10)
        # both ingest lanes (control_plane/ingest/lanes.py), each with its own connection
        wait_for(lambda: all(h.ok for h in state.services.health().values()), 10,
                 what="every service healthy")
        health = client.get("/healthz").json()
        assert health["mqtt"] == "connected" and health["embedded_broker"] is True
        services = health["services"]
        assert list(services) == ["embedded-broker", "mqtt", "mqtt-control", "drift-analysis",
                                 "rollout-engine"]
        assert all(s["ok"] for s in services.values()), services
        assert services["embedded-broker"]["detail"] == f"listening on 127.0.0.1:{port}"


def test_a_reconnecting_session_gets_only_its_own_retained_messages(
    broker: EmbeddedBroker,
) -> None:
    """amqtt replayed, on a persistent session's reconnect, the retained messages of every
    client's filters: an agent got its own status from the control plane's `+/status`."""
    device = "parkwatch/v1/devices/cam-1"
    fleet = paho.Client(CallbackAPIVersion.VERSION2, client_id="t-fleet", clean_session=False,
                        protocol=paho.MQTTv311)
    subscribed = threading.Event()
    fleet.on_subscribe = lambda *_a: subscribed.set()
    fleet.on_connect = lambda cl, _u, _f, _r, _p: cl.subscribe(
        [("parkwatch/v1/devices/+/status", 1), ("parkwatch/v1/devices/+/reported", 1)])
    fleet.connect("127.0.0.1", broker.port)
    fleet.loop_start()
    assert subscribed.wait(30)

    received: list[paho.MQTTMessage] = []
    marker = threading.Event()

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        received.append(msg)
        if msg.payload == b"marker":
            marker.set()

    agent = paho.Client(CallbackAPIVersion.VERSION2, client_id="t-agent", clean_session=False,
                        protocol=paho.MQTTv311)
    agent.on_message = on_message
    agent_subscribed = threading.Event()
    agent.on_subscribe = lambda *_a: agent_subscribed.set()
    connected = threading.Event()
    agent.on_connect = lambda *_a: connected.set()
    agent.connect("127.0.0.1", broker.port)
    agent.loop_start()
    assert connected.wait(30)
    agent.subscribe(f"{device}/desired", qos=1)
    assert agent_subscribed.wait(30)
    for kind in ("status", "reported", "desired"):
        agent.publish(f"{device}/{kind}", kind.encode(), qos=1, retain=True).wait_for_publish(30)
    agent.disconnect()
    agent.loop_stop()
    # Reconnect only once the broker has closed the old connection: on a loaded machine
    # amqtt may still hold it, and its take-over path then loses the session's delivery.
    sessions = broker._broker._sessions  # amqtt exposes no public view of its sessions
    wait_for(lambda: sessions["t-agent"][0].transitions.is_disconnected(), 30,
             "the broker to close the agent's first connection")

    received.clear()
    connected.clear()
    agent.reconnect()  # the same persistent session: the broker keeps its subscription
    agent.loop_start()
    assert connected.wait(30)
    other = _client(broker.port)
    other.publish(f"{device}/desired", b"marker", qos=1).wait_for_publish(30)
    assert marker.wait(30), [(m.topic, m.payload) for m in received]
    assert {m.topic for m in received} == {f"{device}/desired"}, [
        (m.topic, m.payload) for m in received]
    for c in (agent, fleet, other):
        c.disconnect()
        c.loop_stop()
