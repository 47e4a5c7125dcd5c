"""MQTT topic names (docs/architecture.md, "The wire contract").

All components build topics here."""

from __future__ import annotations

import re
from typing import Literal, get_args

from ._errors import ProtocolError

TOPIC_ROOT = "parkwatch/v1"
TopicKind = Literal[
    "desired", "desired_signed", "reported", "status", "telemetry", "events", "commands",
]
TOPIC_KINDS: tuple[str, ...] = get_args(TopicKind)

# Device ids end up in topic names, file names and URLs: keep them boring.
DEVICE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
_TOPIC_RE = re.compile(
    rf"^{re.escape(TOPIC_ROOT)}/devices/(?P<device>[^/]+)/(?P<kind>{'|'.join(TOPIC_KINDS)})$"
)


def check_device_id(device_id: str) -> str:
    """Return ``device_id`` if it is a valid device id, else raise ProtocolError."""
    if not _DEVICE_ID_RE.match(device_id):
        raise ProtocolError(
            f"invalid device id {device_id!r}: use 1-63 chars of a-z, 0-9, '-', '_', "
            "starting with a letter or digit"
        )
    return device_id


def device_topic(device_id: str, kind: TopicKind) -> str:
    """The topic of one device's channel, e.g. ``parkwatch/v1/devices/cam-1/telemetry``."""
    check_device_id(device_id)
    if kind not in TOPIC_KINDS:
        raise ProtocolError(f"unknown topic kind {kind!r}; expected one of {TOPIC_KINDS}")
    return f"{TOPIC_ROOT}/devices/{device_id}/{kind}"


def desired_topic(device_id: str) -> str:
    return device_topic(device_id, "desired")


def signed_desired_topic(device_id: str) -> str:
    return device_topic(device_id, "desired_signed")


def reported_topic(device_id: str) -> str:
    return device_topic(device_id, "reported")


def status_topic(device_id: str) -> str:
    return device_topic(device_id, "status")


def telemetry_topic(device_id: str) -> str:
    return device_topic(device_id, "telemetry")


def events_topic(device_id: str) -> str:
    return device_topic(device_id, "events")


def commands_topic(device_id: str) -> str:
    return device_topic(device_id, "commands")


def fleet_subscription(kind: TopicKind, share_group: str | None = None) -> str:
    """Wildcard subscription for one kind across all devices.

    With ``share_group`` the subscription is an MQTT shared subscription
    (``$share/<group>/...``) so several ingest workers split the load.
    """
    topic = f"{TOPIC_ROOT}/devices/+/{kind}"
    return f"$share/{share_group}/{topic}" if share_group else topic


def parse_device_topic(topic: str) -> tuple[str, TopicKind]:
    """Split a device topic into ``(device_id, kind)``; raise ProtocolError otherwise."""
    match = _TOPIC_RE.match(topic)
    if match is None:
        raise ProtocolError(f"not a parkwatch device topic: {topic[:200]!r}")
    device_id = check_device_id(match["device"])
    kind: TopicKind = match["kind"]  # type: ignore[assignment]
    return device_id, kind
