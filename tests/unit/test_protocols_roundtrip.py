"""Property tests: every wire model round-trips; random bytes only ever raise ProtocolError."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import protocols
from protocols import ProtocolError, decode, encode
from protocols.codec import MAX_PAYLOAD_BYTES, MESSAGE_FOR_TOPIC

WIRE_MODELS: list[type[BaseModel]] = [
    *MESSAGE_FOR_TOPIC.values(),
    protocols.ReleaseManifest,
    protocols.SignedManifest,
    protocols.ModelVersionCreate,
]

device_ids = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,20}\Z")
release_ids = st.from_regex(r"\A[A-Za-z0-9._:-]{1,30}\Z")
camera_ids = st.from_regex(r"\A[A-Za-z0-9._-]{1,20}\Z")
labels = st.text(min_size=1, max_size=12)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
counts = st.lists(st.integers(0, 10**6), max_size=20)
small_floats = st.floats(0, 1e6, allow_nan=False)
percentiles = st.builds(protocols.Percentiles, p50=small_floats, p95=small_floats, p99=small_floats)

camera_windows = st.builds(
    protocols.CameraWindow,
    camera_id=camera_ids,
    state=st.sampled_from(["up", "reconnecting", "down"]),
    frames_captured=st.integers(0, 10**6),
    capture_fps=small_floats,
    inference_ms=st.none() | percentiles,
    class_counts=st.dictionaries(labels, st.integers(0, 10**6), max_size=4),
    confidence_hist=counts,
    input_hists=st.dictionaries(labels, counts, max_size=4),
    embedding_hists=st.lists(counts, max_size=4),
)

STRATEGIES: dict[type[BaseModel], st.SearchStrategy[BaseModel]] = {
    protocols.DesiredState: st.builds(
        protocols.DesiredState,
        device_id=device_ids,
        revision=st.integers(0, 2**40),
        release_id=st.none() | release_ids,
        mode=st.sampled_from(["active", "shadow"]),
        issued_at=times,
        expires_at=st.none() | times,
    ),
    protocols.ReportedState: st.builds(
        protocols.ReportedState,
        device_id=device_ids,
        agent_version=st.just("0.1.0"),
        active=st.none()
        | st.builds(
            protocols.ReleaseStatus,
            release_id=release_ids,
            model_version=st.just("3"),
            stage=st.sampled_from(["installed", "loaded", "warmed", "healthy", "failed"]),
            since=times,
        ),
        cameras=st.lists(
            st.builds(protocols.CameraStatus, camera_id=camera_ids, state=st.just("up")),
            max_size=3,
        ),
        updated_at=times,
    ),
    protocols.DeviceStatus: st.builds(
        protocols.DeviceStatus,
        device_id=device_ids,
        state=st.sampled_from(["online", "offline"]),
        at=times,
    ),
    protocols.TelemetryWindow: st.builds(
        protocols.TelemetryWindow,
        device_id=device_ids,
        seq=st.integers(0, 2**40),
        window_start=times,
        window_end=times,
        cameras=st.lists(camera_windows, max_size=3),
        rss_bytes=st.integers(0, 2**40),
    ),
    protocols.DeviceEvent: st.builds(
        protocols.DeviceEvent,
        device_id=device_ids,
        seq=st.integers(0, 2**40),
        kind=st.sampled_from(["detection", "activated", "rolled_back"]),
        at=times,
        confidence=st.none() | st.floats(0, 1),
        detail=st.none() | st.text(max_size=200),
    ),
}


@pytest.mark.parametrize("model", list(STRATEGIES), ids=lambda m: m.__name__)
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_round_trip(model: type[BaseModel], data: st.DataObject) -> None:
    message = data.draw(STRATEGIES[model])
    assert decode(model, encode(message)) == message


@pytest.mark.parametrize("model", WIRE_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=512))
def test_random_bytes_only_raise_protocol_error(model: type[BaseModel], payload: bytes) -> None:
    try:
        decode(model, payload)
    except ProtocolError as exc:
        assert str(exc)  # a readable reason, never empty
    # Anything else propagates and fails the test.


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("model", WIRE_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None)
@given(value=json_values)
def test_random_json_only_raises_protocol_error(model: type[BaseModel], value: object) -> None:
    import json

    with contextlib.suppress(ProtocolError):
        decode(model, json.dumps(value).encode())


def test_oversized_payload_is_refused_before_parsing() -> None:
    cap = MAX_PAYLOAD_BYTES["DeviceStatus"]
    with pytest.raises(ProtocolError, match="over its cap"):
        decode(protocols.DeviceStatus, b" " * (cap + 1))


def test_error_names_the_bad_field() -> None:
    bad = b'{"schema":"parkwatch/v1","device_id":"Bad Id!","revision":-1}'
    with pytest.raises(ProtocolError) as info:
        decode(protocols.DesiredState, bad)
    assert "device_id" in str(info.value) and "revision" in str(info.value)


def test_other_schema_version_is_refused() -> None:
    msg = protocols.DeviceStatus(device_id="cam-1", state="online")
    raw = encode(msg).replace(b"parkwatch/v1", b"parkwatch/v2")
    with pytest.raises(ProtocolError, match="schema"):
        decode(protocols.DeviceStatus, raw)


def test_json_schema_export_covers_every_model() -> None:
    schemas = protocols.json_schemas()
    assert {m.__name__ for m in WIRE_MODELS} <= set(schemas)
    assert schemas["DesiredState"]["properties"]["schema"]["const"] == "parkwatch/v1"
