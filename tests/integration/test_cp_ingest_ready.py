"""Ingest says it is ready only once the broker has taken its subscriptions: a window
published the moment after is stored, even when the SUBSCRIBE travels slowly (a real
Mosquitto behind a relay that delays what the control plane sends after its CONNECT)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.ingest.adapter import MqttAdapter
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import telemetry_window
from protocols import encode, telemetry_topic
from tests.conftest import Mosquitto, wait_for
from tests.net_kit import SlowUpstream


@pytest.fixture
def relay(mosquitto: Mosquitto) -> Iterator[SlowUpstream]:
    link = SlowUpstream(mosquitto.port, delay=1.5)
    yield link
    link.close()


def test_ready_means_subscribed(tmp_path: Path, mosquitto: Mosquitto,
                                relay: SlowUpstream) -> None:
    url = f"sqlite:///{tmp_path / 'cp.sqlite3'}"
    upgrade(url)
    engine = create_db_engine(url)
    with session_scope(engine) as session:
        session.add(Device(device_id="cam-0", labels={}))
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet-sim")
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    adapter = MqttAdapter(f"mqtt://127.0.0.1:{relay.port}", engine, client_id="cp-ready")
    adapter.start()
    try:
        assert adapter.wait_connected(15)
        publisher.publish(telemetry_topic("cam-0"), encode(telemetry_window("cam-0", 1)),
                          qos=1).wait_for_publish(10)

        def stored() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM telemetry_window"))
                           .scalar_one())

        wait_for(lambda: stored() == 1, timeout=20, what="the window published when ready")
    finally:
        adapter.stop()
        publisher.disconnect()
        publisher.loop_stop()
        engine.dispose()
