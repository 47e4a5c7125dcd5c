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
