"""Property-based fuzzing of every MQTT message handler, agent and control plane: any
topic and payload is either handled or dropped with a logged reason; nothing raises,
and nothing invalid reaches the services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from control_plane.ingest.adapter import MqttAdapter
from control_plane.store import db
from control_plane.store.models import Device
from control_plane.testing import reported_state, telemetry_window
from edge_agent.config import MqttTarget
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from protocols import (
    DesiredState,
    DeviceStatus,
    decode,
    desired_topic,
    device_topic,
    encode,
)
from protocols.messages import DeviceEvent
from tests.fuzz.strategies import FUZZ, mutated

DEVICE = "cam-1"


def _message(topic: str, payload: bytes) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


# -- agent: devices/{id}/desired ---------------------------------------------------------------
DESIRED = encode(DesiredState(device_id=DEVICE, revision=3, release_id="r1"))
OTHER_DESIRED = encode(DesiredState(device_id="cam-2", revision=3, release_id="r1"))


@pytest.fixture
def link(tmp_path: Path) -> Iterator[tuple[MqttLink, list[DesiredState]]]:
    got: list[DesiredState] = []
    outbox = Outbox(tmp_path / "o.db")
    target = MqttTarget(host="127.0.0.1", port=1, tls=False, username=None)
    yield MqttLink(DEVICE, target, outbox, got.append, "fuzz"), got
    outbox.close()


def test_agent_desired_handler_never_raises(link: tuple[MqttLink, list[DesiredState]]) -> None:
    handler, got = link

    @FUZZ
    @given(payload=st.one_of(mutated(DESIRED), mutated(OTHER_DESIRED)))
    def check(payload: bytes) -> None:
        got.clear()
        handler._handle_message(handler._client, None, _message(desired_topic(DEVICE), payload))
        for state in got:  # only valid desired states addressed to this device get through
            assert state.device_id == DEVICE
            again = decode(DesiredState, payload)  # issued_at defaults to now when absent
            assert again.model_dump(exclude={"issued_at"}) == state.model_dump(
                exclude={"issued_at"})

    check()


# -- control plane: status, reported, telemetry, events -------------------------------------
def _valid(kind: str, device_id: str) -> bytes:
    if kind == "status":
        return encode(DeviceStatus(device_id=device_id, state="online", agent_version="1"))
    if kind == "reported":
        return encode(reported_state(device_id, "r1", "healthy", revision=1))
    if kind == "telemetry":
        return encode(telemetry_window(device_id, 1))
    return encode(DeviceEvent(device_id=device_id, seq=1, kind="activated"))


_KINDS = ("status", "reported", "telemetry", "events", "unknown")
_OUTCOMES = ("applied", "stored", "duplicate", "invalid", "unknown_device", "ignored", "error")


def _outcomes() -> dict[str, float]:
    return {
        o: sum(REGISTRY.get_sample_value(
            "parkwatch_cp_mqtt_messages_total", {"kind": k, "outcome": o}) or 0.0 for k in _KINDS)
        for o in _OUTCOMES
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    db.upgrade(url)
    eng = db.create_db_engine(url)
    with db.session_scope(eng) as session:
        session.add(Device(device_id=DEVICE, labels={}))
    yield eng
    eng.dispose()


@st.composite
def cp_messages(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["status", "reported", "telemetry", "events"]))
    device_id = draw(st.sampled_from([DEVICE, DEVICE, DEVICE, "ghost"]))
    # Mostly the topic's own device, sometimes another (a payload lying about its sender).
    payload_device = draw(st.sampled_from([device_id, device_id, device_id, "cam-2"]))
    payload = draw(mutated(_valid(kind, payload_device)))
    good = device_topic(device_id, kind)  # type: ignore[arg-type]
    topic = draw(st.sampled_from([
        good, good, good, good,  # mostly well-addressed, so payloads reach the handlers
        f"parkwatch/v1/devices/{device_id}/{kind}/extra",
        f"parkwatch/v1/devices/Bad+Id/{kind}",
        "parkwatch/v1/devices//telemetry",
    ]))
    if draw(st.integers(0, 9)) == 0:
        topic = draw(st.text(max_size=80))
    return topic, payload


def test_control_plane_handlers_never_raise(engine: Engine) -> None:
    adapter = MqttAdapter("mqtt://127.0.0.1:1", engine, client_id="fuzz")
    before = _outcomes()

    @FUZZ
    @given(message=cp_messages())
    def check(message: tuple[str, bytes]) -> None:
        topic, payload = message
        adapter._handle_message(adapter.client, None, _message(topic, payload))
        adapter.pipeline.drain()  # the writer thread's work, here (the adapter is not started)

    check()
    seen = {k: int(v - before[k]) for k, v in _outcomes().items() if v != before[k]}
    print(f"injected: fuzzed topics and payloads into the control plane's 4 handlers -> "
          f"observed outcomes {seen}")
    # A handler that crashed on a message that passed validation counts as "error".
    assert "error" not in seen, "a message handler raised on validated input"
    assert seen.get("invalid", 0) > 0 and len(seen) > 2, "the fuzzing exercised too little"


def test_payload_size_cap_is_enforced(engine: Engine) -> None:
    adapter = MqttAdapter("mqtt://127.0.0.1:1", engine, client_id="fuzz-cap")
    huge = _valid("telemetry", DEVICE)[:-1] + b" " * (4 << 20) + b"}"
    before = REGISTRY.get_sample_value(
        "parkwatch_cp_mqtt_messages_total", {"kind": "telemetry", "outcome": "invalid"}) or 0
    adapter._handle_message(adapter.client, None,
                            _message(device_topic(DEVICE, "telemetry"), huge))
    after: Any = REGISTRY.get_sample_value(
        "parkwatch_cp_mqtt_messages_total", {"kind": "telemetry", "outcome": "invalid"})
    assert after == before + 1
