"""Scaling ingest workers up, down and restarting them loses nothing: a real Mosquitto
(shared subscription, persistent sessions), real ingest adapters and a SQLite store.

A stopped worker's persistent session keeps taking its share; a restarted worker claims
the same slot, so the same client id, and receives what was queued. A worker removed
for good is retired: its queued share is stored and its session ended, so later
windows all go to the workers still running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.config import ControlPlaneSettings
from control_plane.ingest import identity
from control_plane.ingest.adapter import MqttAdapter
from control_plane.processes.ingest import retire_idle_sessions, slot_folder
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import telemetry_window
from protocols import encode, telemetry_topic
from tests.conftest import Mosquitto, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.fault]
DEVICES = [f"cam-{i}" for i in range(4)]


class Fleet:
    def __init__(self, broker: Mosquitto) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet-sim")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.seq = 0

    def send(self, n: int) -> None:
        infos = []
        for _ in range(n):
            self.seq += 1
            device = DEVICES[self.seq % len(DEVICES)]
            infos.append(self.client.publish(
                telemetry_topic(device), encode(telemetry_window(device, self.seq)), qos=1))
        for info in infos:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def settings(tmp_path: Path, mosquitto: Mosquitto) -> ControlPlaneSettings:
    return ControlPlaneSettings(data_dir=tmp_path / "cp", role="ingest", mqtt_url=mosquitto.url,
                                database_url=f"sqlite:///{tmp_path / 'cp.db'}",
                                ingest_share_group="ingest")


@pytest.fixture
def engine(settings: ControlPlaneSettings) -> Iterator[sa.Engine]:
    upgrade(settings.resolved_database_url)
    eng = create_db_engine(settings.resolved_database_url)
    with session_scope(eng) as session:
        session.add_all(Device(device_id=d, labels={}) for d in DEVICES)
    yield eng
    eng.dispose()


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM telemetry_window")).scalar_one())


def start_worker(settings: ControlPlaneSettings, engine: sa.Engine
                 ) -> tuple[MqttAdapter, identity.Slot]:
    base = identity.base_client_id(settings.mqtt_client_id, settings.data_dir)
    slot = identity.claim_slot(base, slot_folder(settings))
    adapter = MqttAdapter(settings.broker_url, engine, client_id=slot.client_id,
                          share_group="ingest")
    adapter.start()
    assert adapter.wait_connected(15)
    return adapter, slot


def stop_worker(worker: tuple[MqttAdapter, identity.Slot]) -> None:
    worker[0].stop()
    worker[1].release()


def all_taking_part(fleet: Fleet, engine: sa.Engine, adapters: list[MqttAdapter]) -> None:
    """Send until every adapter has received a message: its subscription is in place."""
    marks = [a.last_activity for a in adapters]
    deadline = time.monotonic() + 20
    while any(a.last_activity == m for a, m in zip(adapters, marks, strict=True)):
        assert time.monotonic() < deadline, "a worker never received its share"
        fleet.send(1)
        time.sleep(0.05)
    wait_for(lambda: stored(engine) == fleet.seq, what="warm-up windows stored")


def test_restarted_and_retired_workers_lose_nothing(
    settings: ControlPlaneSettings, engine: sa.Engine, mosquitto: Mosquitto
) -> None:
    fleet = Fleet(mosquitto)
    a = start_worker(settings, engine)
    b = start_worker(settings, engine)
    held = 0
    try:
        assert (a[1].number, b[1].number) == (0, 1) and a[1].client_id != b[1].client_id
        all_taking_part(fleet, engine, [a[0], b[0]])
        stop_worker(b)  # a restart: its session takes its share meanwhile
        fleet.send(100)
        assert identity.wait_quiet(lambda: a[0].last_activity, 1.0, 30)
        held = fleet.seq - stored(engine)
        assert held > 0  # the stopped worker's share waits in its session
        b = start_worker(settings, engine)
        assert b[1].number == 1  # the same slot, so the same session
        wait_for(lambda: stored(engine) == fleet.seq, what="the restarted worker's share stored")

        stop_worker(b)  # scaled down for good
        fleet.send(100)
        retired = retire_idle_sessions(settings)
        assert retired == [b[1].client_id]
        wait_for(lambda: stored(engine) == fleet.seq, timeout=10,
                 what="the retired worker's share stored")
        fleet.send(50)  # only the running worker is left in the group
        wait_for(lambda: stored(engine) == fleet.seq, timeout=10,
                 what="every later window stored by the worker left")
    finally:
        stop_worker(a)
        fleet.close()
    print(f"injected: a worker restarted ({held} windows waited in its session) and one "
          f"retired mid-stream -> observed {stored(engine)} of {fleet.seq} windows stored")
