"""Snapshots on request, end to end: an operator asks, the command crosses a real Mosquitto,
a real ``parkwatch agent run`` takes the next frame of its camera (decoded by OpenCV from a
video) and uploads it; the control plane stores it and the dashboard's API serves it.

Nothing streams: a device can answer only a command it was sent, once; a read-only token
cannot ask; an unknown camera is refused with the cameras the device has.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from protocols import generate_signing_key
from tests.agent_kit import looping_camera, wait_until, write_config
from tests.browser_kit import Browser, chromium_path
from tests.conftest import REPO_ROOT, Mosquitto
from tests.fleet_kit import ControlPlane, serve_control_plane

pytestmark = pytest.mark.timeout(180)
DEVICE = "park1-gate"


@pytest.fixture
def control_plane(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        yield cp


@pytest.fixture
def agent(tmp_path: Path, mosquitto: Mosquitto, control_plane: ControlPlane) -> Iterator[str]:
    """A provisioned device running the real agent (no model yet); yields its token."""
    with control_plane.http() as http:
        r = http.post("/api/v1/devices", json={"device_id": DEVICE})
        assert r.status_code == 201, r.text
        token = str(r.json()["token"])
    config = write_config(tmp_path / "agent.toml", mqtt_url=mosquitto.url,
                          server_url=control_plane.url, key=generate_signing_key(),
                          data_dir=tmp_path / "data", cameras=looping_camera(tmp_path),
                          api_token=token)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    with (tmp_path / "agent.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parkwatch_cli", "agent", "run", "--config", str(config)],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield token
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _answer(cp: ControlPlane, token: str, command_id: str) -> httpx.Response:
    ok, jpeg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))
    assert ok
    return httpx.post(f"{cp.url}/api/v1/snapshots", headers={"Authorization": f"Bearer {token}"},
                      json={"device_id": DEVICE, "command_id": command_id, "camera_id": "gate",
                            "captured_at": datetime.now(UTC).isoformat(), "width": 64,
                            "height": 48, "image_jpeg_b64": base64.b64encode(jpeg).decode()})


def test_an_operator_gets_one_snapshot_and_nothing_else_gets_in(
    control_plane: ControlPlane, agent: str, tmp_path: Path
) -> None:
    cp = control_plane
    snap = f"/api/v1/devices/{DEVICE}/cameras/gate/snapshot"
    with cp.http() as http:
        wait_until(lambda: any(c["camera_id"] == "gate" and c["state"] == "up"
                               for c in (http.get(f"/api/v1/devices/{DEVICE}").json()["reported"]
                                         or {}).get("cameras", [])),
                   60, "the agent to report its camera up")
        assert http.get(snap).status_code == 404  # none asked for yet

        read = http.post("/api/v1/tokens", json={"name": "viewer", "scopes": ["read"]}).json()
        refused = httpx.post(f"{cp.url}{snap}",
                             headers={"Authorization": f"Bearer {read['token']}"})
        assert refused.status_code == 403, refused.text
        unknown = http.post(f"/api/v1/devices/{DEVICE}/cameras/nope/snapshot")
        assert unknown.status_code == 404 and "gate" in unknown.json()["detail"]

        asked = http.post(snap)
        assert asked.status_code == 202, asked.text
        command_id = asked.json()["command_id"]
        got = wait_until(lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            http.get(snap)), 30, "the device's snapshot")
        assert got["command_id"] == command_id and got["boxes"] == []  # no model yet
        image = http.get(f"/api/v1/artifacts/{got['image_sha256']}")
        assert image.status_code == 200
        decoded = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape[:2] == (got["height"], got["width"])
        park = http.get("/api/v1/park").json()["cameras"]
        assert [c["snapshot"]["command_id"] for c in park if c["camera_id"] == "gate"] == [
            command_id]
        audit = http.get("/api/v1/audit", params={"limit": 20}).json()["items"]
        assert "snapshot.request" in {a["action"] for a in audit}

        other = http.post("/api/v1/devices", json={"device_id": "park2-lawn"}).json()["token"]

    if chromium_path() is not None:  # the park manager sees it on the dashboard
        browser = Browser(tmp_path / "chromium")
        try:
            page = browser.open(
                f"{cp.url}/dashboard/#/park/{DEVICE}?token={cp.token}",
                act=lambda run: wait_until(
                    lambda: run("document.querySelector('.snapshot img')?.naturalWidth"),
                    15, "the snapshot image on the park page"),
                values={"width": "document.querySelector('.snapshot img').naturalWidth"})
        finally:
            browser.stop()
        assert page.errors == [] and page.values["width"] == got["width"], page

    assert _answer(cp, agent, command_id).status_code == 409  # answered already
    assert _answer(cp, agent, "snap-never-sent").status_code == 404  # unsolicited
    assert _answer(cp, other, command_id).status_code == 404  # not its command
    assert _answer(cp, cp.token, command_id).status_code in (403, 404)  # not a device
