"""An agent restarting against the embedded broker reads only its desired state: its own
retained status and reported state (which the control plane subscribes to) never come
back to it as an invalid desired state."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.broker.embedded import EmbeddedBroker
from edge_agent.config import MqttTarget
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from protocols import DesiredState, ReportedState, encode
from protocols.topics import desired_topic, fleet_subscription
from tests.conftest import free_port

DEVICE = "cam-echo"


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker("127.0.0.1", free_port())
    b.start()
    yield b
    b.stop()


def test_a_restarted_agent_gets_no_echo_of_its_own_status(
    broker: EmbeddedBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The control plane: a persistent session subscribed to every device's status and
    # reported state, and a retained desired state for the device.
    cp = paho.Client(CallbackAPIVersion.VERSION2, client_id="t-cp", clean_session=False,
                     protocol=paho.MQTTv311)
    subscribed = threading.Event()
    cp.on_subscribe = lambda *_a: subscribed.set()
    cp.on_connect = lambda cl, _u, _f, _r, _p: cl.subscribe(
        [(fleet_subscription("status"), 1), (fleet_subscription("reported"), 1)])
    cp.connect("127.0.0.1", broker.port)
    cp.loop_start()
    assert subscribed.wait(10)
    desired = DesiredState(device_id=DEVICE, revision=1, release_id=None)
    cp.publish(desired_topic(DEVICE), encode(desired), qos=1, retain=True).wait_for_publish(10)

    target = MqttTarget(host="127.0.0.1", port=broker.port, tls=False, username=None)
    caplog.set_level(logging.WARNING, logger="edge_agent.mqtt")
    for run in range(2):  # the first start leaves a retained status and reported state
        got: list[DesiredState] = []
        arrived = threading.Event()

        def on_desired(state: DesiredState, got: list[DesiredState] = got,
                       arrived: threading.Event = arrived) -> None:
            got.append(state)
            arrived.set()

        outbox = Outbox(tmp_path / "outbox.db")
        link = MqttLink(DEVICE, target, outbox, on_desired, "1.0")
        link.start()
        assert arrived.wait(10), f"run {run}: the retained desired state did not arrive"
        link.publish_reported(ReportedState(device_id=DEVICE, agent_version="1.0"))
        link.stop(flush_seconds=2.0)
        outbox.close()
        assert all(state.revision == 1 for state in got)
    echoes = [r.getMessage() for r in caplog.records if "desired state" in r.getMessage()]
    assert echoes == []
    cp.disconnect()
    cp.loop_stop()
