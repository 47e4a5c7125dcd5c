"""The fleet simulator against a real Mosquitto and a real control plane (SQLite, MQTT
ingest): every window is stored exactly once, devices report offline when it stops, and
they reconnect and go on after the broker restarts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.fleet_agents import Fleet, ManifestCache
from scripts.fleet_sim import provision
from scripts.fleet_synth import SimConfig
from tests.agent_kit import wait_until as wait_for
from tests.conftest import Mosquitto
from tests.fleet_kit import ControlPlane, serve_control_plane


@pytest.fixture
def control_plane(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        yield cp


def _count(http: httpx.Client, path: str, **params: str) -> int:
    return int(http.get(path, params={"limit": 1, **params}).json()["total"])


@pytest.mark.slow
def test_a_fleet_streams_every_window_once_and_says_offline(
    control_plane: ControlPlane, mosquitto: Mosquitto
) -> None:
    config = SimConfig(devices=40, windows=3, backfill=3, cameras=1, fps=2.0, seed=3)
    with control_plane.http() as http:
        assert provision(http, config) == 40
        assert provision(http, config) == 0  # idempotent
        fleet = Fleet(config, mosquitto.url, ManifestCache(http))
        done = threading.Event()
        stats = fleet.run(done)  # returns once every window is acknowledged by the broker
        assert (stats.windows_sent, stats.windows_acked, stats.errors) == (120, 120, 0)
        wait_for(lambda: _count(http, "/api/v1/telemetry") >= 120, 20, "120 stored windows")
        time.sleep(0.5)
        assert _count(http, "/api/v1/telemetry") == 120  # exactly once
        wait_for(
            lambda: _count(http, "/api/v1/devices", online="false") == 40,
            20,
            "every device offline after the simulator stopped",
        )


@pytest.mark.slow
def test_devices_reconnect_after_a_broker_restart(
    control_plane: ControlPlane, mosquitto: Mosquitto
) -> None:
    config = SimConfig(devices=10, interval=0.5, cameras=1, fps=2.0)
    stop = threading.Event()
    with control_plane.http() as http:
        provision(http, config)
        fleet = Fleet(config, mosquitto.url, ManifestCache(http))
        thread = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: fleet.stats.connected == 10, 20, "10 connected devices")
            mosquitto.stop()
            wait_for(lambda: fleet.stats.connected == 0, 20, "the devices to see the outage")
            mosquitto.start()
            wait_for(lambda: fleet.stats.connected == 10, 30, "10 devices back after restart")
            before = _count(http, "/api/v1/telemetry")
            wait_for(
                lambda: _count(http, "/api/v1/telemetry") > before + 10,
                30,
                "telemetry flowing again after the restart",
            )
        finally:
            stop.set()
            thread.join(timeout=15)
        assert not thread.is_alive()


@pytest.mark.slow
def test_a_fleet_split_across_processes_sends_every_device_s_windows(
    mosquitto: Mosquitto,
) -> None:
    """Two simulator processes share six devices: each device's windows reach the broker
    once, and the parent's counters add up both processes'."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from protocols import TelemetryWindow, decode
    from scripts.fleet_shards import ShardedFleet

    seen: dict[str, set[int]] = {}
    subscribed = threading.Event()
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="shard-watch")

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        window = decode(TelemetryWindow, msg.payload)
        seen.setdefault(window.device_id, set()).add(window.seq)

    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    sub.subscribe("parkwatch/v1/devices/+/telemetry", qos=1)
    assert subscribed.wait(10)
    config = SimConfig(devices=6, windows=2, backfill=2, cameras=1, fps=2.0, seed=5)
    fleet = ShardedFleet(config, mosquitto.url, processes=2)
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,))
    runner.start()
    try:
        wait_for(lambda: fleet.stats.windows_acked >= 12, 60, "12 acknowledged windows")
        wait_for(lambda: sum(map(len, seen.values())) >= 12, 20, "12 windows received")
    finally:
        stop.set()
        runner.join(60)
        sub.disconnect()
        sub.loop_stop()
    assert sorted(seen) == [f"sim-{i:04d}" for i in range(6)]
    assert all(len(seqs) == 2 for seqs in seen.values())
    assert (fleet.stats.windows_sent, fleet.stats.windows_acked) == (12, 12)
