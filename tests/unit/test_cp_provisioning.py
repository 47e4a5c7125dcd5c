"""Agent config files and MQTT URLs."""

from __future__ import annotations

import tomllib

from hypothesis import given
from hypothesis import strategies as st

from control_plane.schemas import CameraConfig, DeviceCreate
from control_plane.services.devices import AgentEndpoints, agent_config_toml, toml_string

PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"


def test_agent_config_matches_the_contract() -> None:
    body = DeviceCreate(device_id="park1-gate", labels={"park": "p1"},
                        cameras=[CameraConfig(camera_id="gate", source="rtsp://10.0.0.5/s1")])
    endpoints = AgentEndpoints("http://cp:8000", "mqtt://cp:1883", [PEM, PEM.replace("A\n", "B\n")])
    config = tomllib.loads(agent_config_toml("park1-gate", "pw_tok", endpoints, body))
    assert config == {
        "device_id": "park1-gate",
        "control_plane_url": "http://cp:8000",
        "api_token": "pw_tok",
        "mqtt_url": "mqtt://cp:1883",
        "data_dir": "/var/lib/parkwatch-agent",
        "trusted_public_keys": endpoints.trusted_public_keys,
        "cameras": [{"camera_id": "gate", "source": "rtsp://10.0.0.5/s1", "loop": False,
                     "sample_fps": 5.0}],
    }


def test_agent_config_without_cameras_parses() -> None:
    body = DeviceCreate(device_id="d1")
    text = agent_config_toml("d1", "t", AgentEndpoints("http://x", "mqtt://x", [PEM]), body)
    assert "cameras" not in tomllib.loads(text)


@given(st.text(max_size=50))
def test_toml_strings_round_trip(value: str) -> None:
    assert tomllib.loads(f"v = {toml_string(value)}")["v"] == value
