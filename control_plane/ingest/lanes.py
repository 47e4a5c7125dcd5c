"""Ingest in two lanes: the devices' statuses, reported states and events on a broker
connection of their own, apart from telemetry.

The broker hands one connection its messages in order, at most its in-flight limit
unacknowledged, and ingest acknowledges each only once it is committed (``batch``). On one
connection a telemetry backlog (a slow store, a burst of windows) therefore held every
reported state behind it: a rollout to 10,000 devices that telemetry kept busy was seen
complete a minute after the last device had reported (docs/performance.md, "The fleet at
scale"). A second connection subscribes to the control kinds only, with its own queue and
writer: the same ack-after-commit and dead-letter rules, its own back-pressure.

The telemetry lane keeps the configured client id (and so the persistent session that may
hold a backlog for it); the control lane's is ``<client id>-control``. Where the control
plane logs in to the broker, the lane logs in with an account of its own
(``mqtt_control_username`` / ``mqtt_control_password``) or does not run: under Mosquitto's
``use_username_as_clientid`` two connections of one account would oust each other
(``ControlPlaneSettings.control_lane_security``; docs/operations.md). In a process that
also publishes desired states, the control lane publishes them: its network thread never
waits for telemetry to make room.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocols.topics import TopicKind

from ..config import MqttSecurity
from ..lifecycle import Services
from .adapter import INGEST_KINDS, MqttAdapter

log = logging.getLogger(__name__)
CONTROL_KINDS: tuple[TopicKind, ...] = ("status", "reported", "events")
TELEMETRY_KINDS: tuple[TopicKind, ...] = ("telemetry",)

# (client id, kinds to subscribe to, service name, security) -> a subscribing adapter
MakeAdapter = Callable[[str, tuple[TopicKind, ...], str, MqttSecurity], MqttAdapter]


def control_client_id(client_id: str) -> str:
    return f"{client_id}-control"


def start_ingest(services: Services, make: MakeAdapter, client_id: str, *,
                 security: MqttSecurity, control: MqttSecurity | None) -> MqttAdapter:
    """Start ingest on one connection (``control`` None) or in two lanes; return the
    connection that carries the control kinds (the one to publish desired states on)."""
    if control is None:
        log.info("ingest on one connection: a telemetry backlog delays reported states "
                 "(ingest_control_lane; with broker logins it needs mqtt_control_username)")
        return services.start(make(client_id, INGEST_KINDS, "mqtt", security))
    services.start(make(client_id, TELEMETRY_KINDS, "mqtt", security))
    return services.start(make(control_client_id(client_id), CONTROL_KINDS, "mqtt-control",
                               control))


__all__ = ["CONTROL_KINDS", "TELEMETRY_KINDS", "control_client_id", "start_ingest"]
