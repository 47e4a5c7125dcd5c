"""Abort with a device offline: when it comes back, its retained desired state is the
revert, not the aborted release. The real app, a real Mosquitto, devices played by paho
clients."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from control_plane.config import ControlPlaneSettings
from control_plane.testing import reported_state
from protocols import DesiredState, decode, desired_topic, encode, reported_topic
from tests.conftest import wait_for
from tests.integration.test_cp_mqtt import API, Device, TestClient, _release, create_app


def test_a_device_offline_during_an_abort_never_gets_the_release(
    tmp_path: Path, mosquitto: Any
) -> None:
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", mqtt_url=mosquitto.url,
                                    mqtt_client_id=f"cp-{uuid.uuid4().hex[:8]}",
                                    rollout_tick_seconds=0.1)
    peer = Device(mosquitto.port, "peer")
    try:
        with TestClient(create_app(settings)) as client:
            headers = {"Authorization":
                       f"Bearer {settings.admin_token_path.read_text().strip()}"}
            for d in ("cam-1", "cam-2"):
                assert client.post(f"{API}/devices", json={"device_id": d},
                                   headers=headers).status_code == 201
            old, new = _release(client, headers), _release(client, headers)
            for d in ("cam-1", "cam-2"):  # both serve the old release
                peer.publish(reported_topic(d), encode(reported_state(d, old)), retain=True)

            def reported(d: str) -> Any:
                return (client.get(f"{API}/devices/{d}", headers=headers).json()
                        .get("reported") or {}).get("active")

            wait_for(lambda: reported("cam-1") and reported("cam-2"), what="both reported")
            rollout = client.post(f"{API}/rollouts", json={
                "release_id": new, "waves": ["100%"], "gates": {"min_windows": 0}},
                headers=headers).json()
            # The answer is the plan: the first wave goes out right after it.
            sent = client.get(f"{API}/rollouts/{rollout['rollout_id']}", headers=headers).json()
            revisions = {d["device_id"]: d["revision"] for d in sent["devices"]}
            # cam-1 installs it and says so; cam-2 is off before it read its desired state.
            peer.publish(reported_topic("cam-1"), encode(reported_state(
                "cam-1", new, revision=revisions["cam-1"])), retain=True)

            def device_states() -> dict[str, str]:
                view = client.get(f"{API}/rollouts/{rollout['rollout_id']}",
                                  headers=headers).json()
                return {d["device_id"]: d["state"] for d in view["devices"]}

            wait_for(lambda: device_states()["cam-1"] == "acknowledged", what="cam-1 acked")
            r = client.post(f"{API}/rollouts/{rollout['rollout_id']}/abort",
                            json={"reason": "bad night images"}, headers=headers)
            assert r.status_code == 200, r.text
            assert device_states() == {"cam-1": "acknowledged", "cam-2": "rolled_back"}

            back = Device(mosquitto.port, "cam-2-back")  # cam-2 reconnects
            try:
                back.subscribe(desired_topic("cam-2"))
                msgs = wait_for(lambda: back.received, what="cam-2's retained desired state")
                state = decode(DesiredState, msgs[-1].payload)
                assert state.release_id == old and state.revision > revisions["cam-2"]
            finally:
                back.close()
            kept = client.get(f"{API}/devices/cam-1", headers=headers).json()
            assert kept["desired_release_id"] == new  # it had acknowledged: it keeps it
    finally:
        peer.close()
