from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import ProtocolError, device_topic, fleet_subscription, parse_device_topic


def test_topic_round_trip() -> None:
    for kind in ("desired", "reported", "status", "telemetry", "events"):
        topic = device_topic("park1-gate", kind)  # type: ignore[arg-type]
        assert topic == f"parkwatch/v1/devices/park1-gate/{kind}"
        assert parse_device_topic(topic) == ("park1-gate", kind)


def test_shared_subscription() -> None:
    assert fleet_subscription("telemetry") == "parkwatch/v1/devices/+/telemetry"
    assert fleet_subscription("telemetry", "ingest") == (
        "$share/ingest/parkwatch/v1/devices/+/telemetry"
    )


@pytest.mark.parametrize("device_id", ["", "UPPER", "a/b", "+", "#", "-lead", "x" * 64, "a b"])
def test_bad_device_ids_are_refused(device_id: str) -> None:
    with pytest.raises(ProtocolError, match="device id"):
        device_topic(device_id, "status")


@given(st.text(max_size=100))
def test_parse_never_raises_anything_else(topic: str) -> None:
    with contextlib.suppress(ProtocolError):
        parse_device_topic(topic)
