"""Control-plane restart during a rollout: the device reports while the control plane is
down; after the restart the rollout completes and every window is stored exactly once."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.testing import reported_state, telemetry_window
from protocols import encode, reported_topic, telemetry_topic
from tests.conftest import Mosquitto
from tests.integration.test_cp_mqtt import API, Device, _release, _telemetry_seqs, wait_for

pytestmark = pytest.mark.fault


def test_rollout_survives_a_control_plane_restart(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # A fixed client id: the broker keeps this persistent session's QoS 1 messages
    # while the control plane is down (the documented production setting).
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", mqtt_url=mosquitto.url,
                                    mqtt_client_id="cp-restart-test")
    with TestClient(create_app(settings)) as client:
        headers = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        assert client.app.state.parkwatch.mqtt.wait_connected(10)  # type: ignore[attr-defined]
        r = client.post(f"{API}/devices", json={"device_id": "cam-1"}, headers=headers)
        assert r.status_code == 201, r.text
        release_id = _release(client, headers)
        rollout = client.post(f"{API}/rollouts", json={"release_id": release_id,
                                                       "devices": ["cam-1"]},
                              headers=headers).json()
        rollout_id = rollout["rollout_id"]
    # The control plane is down now; the device installs and reports meanwhile.
    device = Device(mosquitto.port, "cam-1")
    try:
        for stage in ("installed", "healthy"):
            device.publish(reported_topic("cam-1"),
                           encode(reported_state("cam-1", release_id, stage, revision=1)))
        for seq in (1, 2, 2):  # one re-sent, as after a reconnect
            device.publish(telemetry_topic("cam-1"), encode(telemetry_window(
                "cam-1", seq, release_id, class_counts={"dog": 5, "cat": 3})))
    finally:
        device.close()

    with TestClient(create_app(settings)) as client:

        def state() -> Any:
            return client.get(f"{API}/rollouts/{rollout_id}", headers=headers).json()

        done = wait_for(lambda: state()["state"] == "completed" and state(), timeout=30,
                        what="the rollout to complete after the restart")
        seqs = _telemetry_seqs(client, headers, "cam-1")
        print(f"injected: control plane stopped mid-rollout, 2 reports + 3 windows (1 re-sent) "
              f"sent meanwhile -> observed rollout {done['state']}, device "
              f"{done['devices'][0]['state']}, stored seqs {seqs}")
        assert done["devices"][0]["state"] == "acknowledged"
        assert seqs == [1, 2]
