"""The Last Will: a device that dies is shown offline by the control plane.

Real parts: Mosquitto, a control plane (uvicorn, SQLite, MQTT ingest) and ``parkwatch
agent run`` processes. SIGKILL closes the agent's socket at once (the broker sends the
Will right away); SIGSTOP freezes it like a power cut or a pulled cable, so only the
keepalive can tell (the broker waits 1.5 x keepalive). The control plane orders status
messages by their arrival and the agent's session, never by the device's clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols import generate_signing_key
from tests.agent_kit import looping_camera, wait_until, write_config
from tests.conftest import REPO_ROOT, Mosquitto
from tests.fleet_kit import ControlPlane, serve_control_plane

pytestmark = [pytest.mark.fault, pytest.mark.timeout(240)]
DEVICE = "park1-gate"
MARGIN_S = 30.0  # generous: a shared 2-core CI machine, ingest and an HTTP poll in between


@pytest.fixture
def control_plane(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        with cp.http() as http:
            assert http.post("/api/v1/devices", json={"device_id": DEVICE}).status_code == 201
        yield cp


def device(cp: ControlPlane) -> dict[str, Any]:
    with cp.http() as http:
        body: dict[str, Any] = http.get(f"/api/v1/devices/{DEVICE}").json()
    return body


def start_agent(tmp: Path, cp: ControlPlane, mqtt_url: str,
                **extra: Any) -> subprocess.Popen[bytes]:
    config = write_config(tmp / "agent.toml", mqtt_url=mqtt_url, server_url=cp.url,
                          key=generate_signing_key(), data_dir=tmp / "data",
                          cameras=looping_camera(tmp), **extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    with (tmp / "agent.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "parkwatch_cli", "agent", "run", "--config", str(config)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def shown(cp: ControlPlane, online: bool, timeout: float, what: str) -> float:
    """Poll the control plane until the device shows ``online``; seconds it took."""
    start = time.monotonic()
    wait_until(lambda: device(cp)["online"] is online, timeout, what)
    return time.monotonic() - start


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def test_sigkilled_agent_is_shown_offline_and_online_again_after_restart(
        tmp_path: Path, mosquitto: Mosquitto, control_plane: ControlPlane) -> None:
    keepalive = 30  # the default: SIGKILL must not need it
    proc = start_agent(tmp_path, control_plane, mosquitto.url)
    try:
        shown(control_plane, True, 60, "the agent shown online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        took = shown(control_plane, False, keepalive * 1.5 + MARGIN_S,
                     "the SIGKILLed agent shown offline (its Last Will)")
        print(f"injected: SIGKILL of the agent -> observed offline after {took:.1f} s "
              f"(keepalive {keepalive} s)")
        proc = start_agent(tmp_path, control_plane, mosquitto.url)
        again = shown(control_plane, True, 60, "the restarted agent shown online")
        print(f"restarted -> observed online again after {again:.1f} s")
    finally:
        stop(proc)


def test_frozen_agent_is_shown_offline_after_its_keepalive(
        tmp_path: Path, mosquitto: Mosquitto, control_plane: ControlPlane) -> None:
    keepalive = 2
    proc = start_agent(tmp_path, control_plane, mosquitto.url, mqtt_keepalive_seconds=keepalive)
    try:
        shown(control_plane, True, 60, "the agent shown online")
        proc.send_signal(signal.SIGSTOP)  # a power cut as the broker sees it: silence
        took = shown(control_plane, False, keepalive * 1.5 + MARGIN_S,
                     "the frozen agent shown offline (its Last Will, by keepalive)")
        print(f"injected: SIGSTOP of the agent (keepalive {keepalive} s) -> observed offline "
              f"after {took:.1f} s")
        assert device(control_plane)["online"] is False
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
        stop(proc)
