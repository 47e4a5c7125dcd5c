"""A telemetry backlog does not hold up the devices' reported states: with ingest in two
lanes (``control_plane/ingest/lanes.py``) a reported state published behind thousands of
held telemetry windows is stored before any of them, against a real Mosquitto (default
in-flight limit of 20) and a real SQLite store; and every window is still stored once.
On one connection (the lane turned off) the same report waits behind the backlog: the
broker sends a connection's messages in order, a few unacknowledged at a time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session

from control_plane.config import MqttSecurity
from control_plane.ingest.adapter import MqttAdapter
from control_plane.ingest.lanes import start_ingest
from control_plane.lifecycle import Services
from control_plane.services.device_messages import DeviceMessage
from control_plane.store.models import Device
from control_plane.testing import reported_state, telemetry_window
from protocols import TelemetryWindow, encode, reported_topic, telemetry_topic
from protocols.topics import TopicKind
from tests.conftest import Mosquitto, wait_for

pytestmark = pytest.mark.slow
WINDOWS = 2000
# How long the telemetry store stays shut waiting for the report: with lanes as long as it
# takes (so no load can reorder the writes), on one connection a while (it cannot come).
HELD_S = {True: 120.0, False: 10.0}


class Rig:
    """Adapters whose telemetry writes wait for ``gate``; every write in commit order."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.writes: list[str] = []
        self.made: list[MqttAdapter] = []
        self.device_writers: list[str] = []  # the connection of each device-message write
        rig = self

        class Gated(MqttAdapter):
            def _write_windows(self, windows: Sequence[TelemetryWindow]) -> Counter[str]:
                rig.gate.wait(120)
                out = super()._write_windows(windows)
                rig.writes.append("telemetry")
                return out

            def _write_device(self, messages: Sequence[DeviceMessage]) -> Counter[tuple[str, str]]:
                out = super()._write_device(messages)
                rig.writes.append("device")
                rig.device_writers.append(self.name)
                return out

        self.adapter = Gated


@pytest.fixture
def engine(cam0_store: Engine) -> Engine:
    return cam0_store


def windows_stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(  # type: ignore[return-value]
            "SELECT count(*), count(DISTINCT seq) FROM telemetry_window")).one())


def report_stored(engine: Engine) -> bool:
    with Session(engine) as session:
        device = session.get(Device, "cam-0")
        return device is not None and bool(device.reported)


@pytest.mark.parametrize("lanes", [True, False], ids=["two-lanes", "one-connection"])
def test_a_reported_state_is_stored_before_a_held_telemetry_backlog(
    engine: Engine, mosquitto: Mosquitto, lanes: bool
) -> None:
    rig = Rig()

    def make(client_id: str, kinds: tuple[TopicKind, ...], name: str,
             security: MqttSecurity) -> MqttAdapter:
        rig.made.append(rig.adapter(mosquitto.url, engine, client_id=client_id, kinds=kinds,
                                             name=name, security=security, max_queued=100,
                                    clean_session=True))
        return rig.made[-1]

    services = Services()
    fleet = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet")
    fleet.max_inflight_messages_set(100)
    try:
        control = start_ingest(services, make, "lanes", security=MqttSecurity(),
                               control=MqttSecurity() if lanes else None)
        assert len(rig.made) == (2 if lanes else 1)
        assert all(adapter.wait_connected(15) for adapter in rig.made)
        fleet.connect("127.0.0.1", mosquitto.port)
        fleet.loop_start()
        infos = [fleet.publish(telemetry_topic("cam-0"),
                               encode(telemetry_window("cam-0", seq)), qos=1)
                 for seq in range(WINDOWS)]
        infos.append(fleet.publish(reported_topic("cam-0"),
                                   encode(reported_state("cam-0", "r2")), qos=1))
        for info in infos:
            info.wait_for_publish(30)
        assert all(info.is_published() for info in infos)
        # The store stays shut to telemetry until the report is in (or HELD_S passed).
        deadline = time.monotonic() + HELD_S[lanes]
        while not report_stored(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        held_at_report = windows_stored(engine)[0]
        rig.gate.set()
        wait_for(lambda: windows_stored(engine)[0] >= WINDOWS and report_stored(engine),
                 timeout=180, what="every window and the report stored")
    finally:
        rig.gate.set()
        fleet.loop_stop()
        fleet.disconnect()
        services.stop()
    assert windows_stored(engine) == (WINDOWS, WINDOWS)  # each once
    first_device = rig.writes.index("device")
    print(f"lanes={lanes}: the report was written after {first_device} telemetry batches "
          f"({held_at_report} windows stored when the store opened)")
    if lanes:
        assert control.kinds == ("status", "reported", "events")
        assert first_device == 0, "the report waited behind the telemetry backlog"
        assert held_at_report == 0
    else:  # the positive control: one connection holds the report behind the backlog
        assert first_device > 0


def test_a_session_from_before_the_lanes_leaves_the_control_kinds_to_the_control_lane(
    engine: Engine, mosquitto: Mosquitto
) -> None:
    """A worker's persistent session subscribed to every kind on one connection; after
    the upgrade, that client id (the telemetry lane) unsubscribes from the control kinds,
    so a report reaches the control lane only."""
    before = MqttAdapter(mosquitto.url, engine, client_id="upgraded")
    before.start()
    assert before.wait_connected(15)
    before.stop()  # the session, with its four subscriptions, stays at the broker
    rig = Rig()

    def make(client_id: str, kinds: tuple[TopicKind, ...], name: str,
             security: MqttSecurity) -> MqttAdapter:
        rig.made.append(rig.adapter(mosquitto.url, engine, client_id=client_id, kinds=kinds,
                                    name=name, security=security))
        return rig.made[-1]

    rig.gate.set()
    services = Services()
    fleet = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet-upgraded")
    try:
        start_ingest(services, make, "upgraded", security=MqttSecurity(),
                     control=MqttSecurity())
        assert all(adapter.wait_connected(15) for adapter in rig.made)
        fleet.connect("127.0.0.1", mosquitto.port)
        fleet.loop_start()
        fleet.publish(reported_topic("cam-0"), encode(reported_state("cam-0", "r2")),
                      qos=1).wait_for_publish(30)
        fleet.publish(telemetry_topic("cam-0"), encode(telemetry_window("cam-0", 1)),
                      qos=1).wait_for_publish(30)
        wait_for(lambda: report_stored(engine) and windows_stored(engine)[0] == 1,
                 timeout=60, what="the report and the window stored")
    finally:
        fleet.loop_stop()
        fleet.disconnect()
        services.stop()
        # end the sessions: the broker would queue every later test's messages for them
        for client_id in ("upgraded", "upgraded-control"):
            ender = MqttAdapter(mosquitto.url, engine, client_id=client_id,
                                clean_session=True, subscribe=False)
            ender.start()
            ender.wait_connected(15)
            ender.stop()
    assert rig.device_writers == ["mqtt-control"]


def connected_gauge(lane: str) -> float | None:
    return REGISTRY.get_sample_value("parkwatch_cp_mqtt_connected", {"lane": lane})


def connects() -> float:
    return REGISTRY.get_sample_value("parkwatch_cp_mqtt_connects_total") or 0.0


def test_each_lane_reports_its_own_connection(engine: Engine, mosquitto: Mosquitto) -> None:
    """The telemetry lane is down while the control lane reconnects: the connected gauge
    says so per lane (on one series for both, the control lane's connect set it to 1 and
    hid the telemetry lane's disconnect)."""
    made: list[MqttAdapter] = []

    def make(client_id: str, kinds: tuple[TopicKind, ...], name: str,
             security: MqttSecurity) -> MqttAdapter:
        made.append(MqttAdapter(mosquitto.url, engine, client_id=client_id, kinds=kinds,
                                name=name, security=security, clean_session=True))
        return made[-1]

    services = Services()
    try:
        control = start_ingest(services, make, "gauge", security=MqttSecurity(),
                               control=MqttSecurity())
        telemetry = next(a for a in made if a is not control)
        assert telemetry.wait_connected(15) and control.wait_connected(15)
        assert (connected_gauge("mqtt"), connected_gauge("mqtt-control")) == (1, 1)
        telemetry.stop()
        before = connects()
        # The broker drops the control lane for a client taking over its id; it reconnects.
        interloper = paho.Client(CallbackAPIVersion.VERSION2, client_id="gauge-control")
        interloper.connect("127.0.0.1", mosquitto.port)
        interloper.loop_start()
        try:
            wait_for(lambda: connects() > before and control.connected, timeout=30,
                     what="the control lane reconnected")
        finally:
            interloper.loop_stop()
            interloper.disconnect()
        assert (connected_gauge("mqtt"), connected_gauge("mqtt-control")) == (0, 1)
    finally:
        services.stop()
    assert (connected_gauge("mqtt"), connected_gauge("mqtt-control")) == (0, 0)
