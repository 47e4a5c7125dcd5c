"""MQTT ingest and desired-state publishing against a real Mosquitto."""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.testing import registration, reported_state, telemetry_window
from protocols import (
    DesiredState,
    DeviceStatus,
    decode,
    desired_topic,
    encode,
    events_topic,
    reported_topic,
    status_topic,
    telemetry_topic,
)
from protocols.messages import DeviceEvent
from tests.conftest import wait_for

API = "/api/v1"



def counter(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "parkwatch_cp_mqtt_messages_total", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


class Device:
    """A paho client playing a device (or any other MQTT client)."""

    def __init__(self, port: int, client_id: str) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.received: list[paho.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append(msg)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def cp(tmp_path: Path, mosquitto: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = ControlPlaneSettings(
        data_dir=tmp_path / "data", mqtt_url=mosquitto.url,
        mqtt_client_id=f"cp-test-{uuid.uuid4().hex[:8]}", rollout_tick_seconds=0.1,
    )
    with TestClient(create_app(settings)) as client:
        token = settings.admin_token_path.read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        state = client.app.state.parkwatch  # type: ignore[attr-defined]
        assert state.mqtt.wait_connected(10)
        assert client.get("/healthz").json()["mqtt"] == "connected"
        yield client, headers


@pytest.fixture
def device(mosquitto: Any) -> Iterator[Device]:
    d = Device(mosquitto.port, "cam-1")
    yield d
    d.close()


def _provision(client: TestClient, headers: dict[str, str], device_id: str = "cam-1") -> None:
    r = client.post(f"{API}/devices", json={"device_id": device_id}, headers=headers)
    assert r.status_code == 201, r.text


def _telemetry_seqs(client: TestClient, headers: dict[str, str], device_id: str) -> list[int]:
    page = client.get(f"{API}/telemetry", params={"device": device_id, "limit": 1000},
                      headers=headers).json()
    return sorted(item["seq"] for item in page["items"])


def test_telemetry_ingest_is_idempotent_and_robust(
    cp: tuple[TestClient, dict[str, str]], device: Device
) -> None:
    client, headers = cp
    _provision(client, headers)
    before = {k: counter("telemetry", k) for k in ("stored", "duplicate", "invalid",
                                                    "unknown_device")}
    topic = telemetry_topic("cam-1")
    device.publish(topic, encode(telemetry_window("cam-1", 1)))
    device.publish(topic, encode(telemetry_window("cam-1", 2)))
    device.publish(topic, encode(telemetry_window("cam-1", 2)))  # re-sent after a reconnect
    device.publish(topic, b"\xff\xfe not json")
    device.publish(topic, b'{"schema": "parkwatch/v1", "device_id": "cam-1"}')  # missing fields
    device.publish(topic, encode(telemetry_window("cam-2", 7)))  # payload names another device
    device.publish(telemetry_topic("ghost"), encode(telemetry_window("ghost", 1)))
    device.publish(topic, encode(telemetry_window("cam-1", 3)))

    wait_for(lambda: counter("telemetry", "unknown_device") > before["unknown_device"]
             and counter("telemetry", "stored") >= before["stored"] + 3
             and counter("telemetry", "invalid") >= before["invalid"] + 3
             and counter("telemetry", "duplicate") >= before["duplicate"] + 1,
             what="all telemetry handled")
    assert _telemetry_seqs(client, headers, "cam-1") == [1, 2, 3]
    assert _telemetry_seqs(client, headers, "ghost") == []
    newest = client.get(f"{API}/telemetry?device=cam-1", headers=headers).json()["items"][0]
    assert newest["seq"] == 3 and newest["window"]["device_id"] == "cam-1"
    assert client.get(f"{API}/devices/cam-1", headers=headers).json()["last_seen"] is not None

    event = DeviceEvent(device_id="cam-1", seq=1, kind="detection", label="dog", confidence=0.9)
    device.publish(events_topic("cam-1"), encode(event))
    device.publish(events_topic("cam-1"), encode(event))
    events = wait_for(lambda: client.get(f"{API}/events?device=cam-1", headers=headers)
                      .json()["items"], what="event stored")
    assert len(events) == 1 and DeviceEvent.model_validate(events[0]) == event


def test_status_online_offline(cp: tuple[TestClient, dict[str, str]], device: Device) -> None:
    client, headers = cp
    _provision(client, headers)

    def online() -> bool:
        return bool(client.get(f"{API}/devices/cam-1", headers=headers).json()["online"])

    device.publish(status_topic("cam-1"),
                   encode(DeviceStatus(device_id="cam-1", state="online", agent_version="0.1.0")),
                   retain=True)
    wait_for(online, what="device online")
    device.publish(status_topic("cam-1"),
                   encode(DeviceStatus(device_id="cam-1", state="offline")), retain=True)
    wait_for(lambda: not online(), what="device offline")
    assert client.get(f"{API}/devices/cam-1", headers=headers).json()["agent_version"] == "0.1.0"


def _release(client: TestClient, headers: dict[str, str]) -> str:
    sha = client.post(f"{API}/artifacts", content=b"model-bytes", headers=headers).json()["sha256"]
    spec = registration("petnet", [(sha, len(b"model-bytes"), "int8")])
    assert client.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"),
                       headers=headers).status_code == 201
    release_id: str = client.post(f"{API}/releases", json={"model_name": "petnet"},
                                  headers=headers).json()["release_id"]
    return release_id


def test_rollout_publishes_retained_desired_and_is_acknowledged(
    cp: tuple[TestClient, dict[str, str]], device: Device, mosquitto: Any
) -> None:
    client, headers = cp
    _provision(client, headers)
    release_id = _release(client, headers)
    rollout = client.post(f"{API}/rollouts", json={"release_id": release_id,
                                                   "devices": ["cam-1"]}, headers=headers).json()
    assert rollout["devices"][0]["state"] == "planned"  # the plan: the wave goes out after it

    late = Device(mosquitto.port, "late-subscriber")  # subscribes after the publish
    try:
        late.subscribe(desired_topic("cam-1"))
        msgs = wait_for(lambda: late.received, what="retained desired state")
        assert msgs[0].retain and msgs[0].qos == 1
        desired = decode(DesiredState, msgs[0].payload)
        assert (desired.release_id, desired.revision, desired.rollout_id, desired.mode) == (
            release_id, 1, rollout["rollout_id"], "active")
    finally:
        late.close()

    device.publish(reported_topic("cam-1"), encode(reported_state("cam-1", release_id, "installed",
                                                                  revision=1)))
    device.publish(reported_topic("cam-1"), encode(reported_state("cam-1", release_id, "healthy",
                                                                  revision=1)))
    for seq in (1, 2):  # the wave's health gates need telemetry of the new release
        device.publish(telemetry_topic("cam-1"), encode(telemetry_window(
            "cam-1", seq, release_id, class_counts={"dog": 5, "cat": 3})))

    def state() -> Any:
        return client.get(f"{API}/rollouts/{rollout['rollout_id']}", headers=headers).json()

    done = wait_for(lambda: state()["state"] == "completed" and state(), what="acknowledged")
    assert done["devices"][0]["state"] == "acknowledged"
    shown = client.get(f"{API}/devices/cam-1", headers=headers).json()
    assert shown["reported"]["active"]["release_id"] == release_id


@pytest.mark.fault
def test_reconnect_resubscribes_and_republishes_desired(
    cp: tuple[TestClient, dict[str, str]], mosquitto: Any
) -> None:
    client, headers = cp
    _provision(client, headers)
    release_id = _release(client, headers)
    client.post(f"{API}/rollouts", json={"release_id": release_id}, headers=headers)
    state = client.app.state.parkwatch  # type: ignore[attr-defined]

    mosquitto.stop()  # no persistence: the retained desired state is gone with it
    wait_for(lambda: not state.mqtt.connected, what="adapter notices the outage")
    mosquitto.start()
    wait_for(lambda: state.mqtt.connected, timeout=30, what="adapter reconnects")

    dev = Device(mosquitto.port, "cam-1")
    try:
        dev.subscribe(desired_topic("cam-1"))
        msgs = wait_for(lambda: dev.received, what="desired state re-published")
        assert decode(DesiredState, msgs[0].payload).release_id == release_id
        dev.publish(telemetry_topic("cam-1"), encode(telemetry_window("cam-1", 42)))
        wait_for(lambda: _telemetry_seqs(client, headers, "cam-1") == [42],
                 what="telemetry after reconnect")
        print("injected: broker restarted without persistence -> observed adapter reconnected, "
              "desired state re-published, telemetry ingested again")
    finally:
        dev.close()
