"""Agents with wrong clocks (10 minutes fast, 70 minutes slow) through a real Mosquitto and
the control plane's MQTT adapter on SQLite: their skew is measured from the ``online``
they send (a retained copy replayed on subscribe measures nothing), shown on the
device, alerted above the limit and resolved once the clock is right; the rollout's ack
deadline runs on the control plane's clock whatever theirs says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.ingest.adapter import MqttAdapter
from control_plane.services.clocks import KIND, reconcile_skew_alerts
from control_plane.services.devices import device_public
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Alert, Device, RolloutDevice
from protocols import DeviceStatus, encode, status_topic
from tests.conftest import Mosquitto, wait_for
from tests.rollout_kit import GATES, Fleet

FAST, SLOW = timedelta(minutes=10), timedelta(minutes=-70)
Send = Callable[[str, bytes, bool], None]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    eng = create_db_engine(url)
    yield eng
    eng.dispose()


@pytest.fixture
def send(mosquitto: Mosquitto) -> Iterator[Send]:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="skewed-agents")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def publish(topic: str, payload: bytes, retain: bool) -> None:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    try:
        yield publish
    finally:
        client.disconnect()
        client.loop_stop()


def online(send: Send, device_id: str, skew: timedelta, *, retain: bool = True) -> None:
    status = DeviceStatus(device_id=device_id, state="online", agent_version="1.0",
                          at=datetime.now(UTC) + skew)
    send(status_topic(device_id), encode(status), retain)


def skew_of(engine: Engine, device_id: str) -> float | None:
    with Session(engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        return device_public(device).clock_skew_s


def adapter(engine: Engine, mosquitto: Mosquitto, send: Send, probe: str) -> MqttAdapter:
    """A running adapter whose subscription is in place: a live status of ``probe`` (a
    device with a right clock) got measured."""
    running = MqttAdapter(mosquitto.url, engine, client_id="cp-clocks", clean_session=True)
    running.start()
    assert running.wait_connected(15)

    def probed() -> bool:
        online(send, probe, timedelta(), retain=False)
        return skew_of(engine, probe) is not None

    wait_for(probed, what="the adapter's subscription", interval=0.2)
    return running


def open_alerts(engine: Engine) -> dict[str | None, float]:
    with Session(engine) as s:
        rows = s.exec(select(Alert).where(Alert.kind == KIND, Alert.state != "resolved"))
        return {a.device_id: a.detail["clock_skew_s"] for a in rows}


def test_skew_is_measured_shown_and_alerted(
    engine: Engine, mosquitto: Mosquitto, send: Send
) -> None:
    Fleet(engine, 3)  # cam-00 fast, cam-01 slow, cam-02 right
    running = adapter(engine, mosquitto, send, "cam-02")
    try:
        for device_id, skew in (("cam-00", FAST), ("cam-01", SLOW)):
            online(send, device_id, skew)
        wait_for(lambda: skew_of(engine, "cam-01") is not None, what="statuses applied")
    finally:
        running.stop()
    assert skew_of(engine, "cam-00") == pytest.approx(600, abs=60)
    assert skew_of(engine, "cam-01") == pytest.approx(-4200, abs=60)
    assert abs(skew_of(engine, "cam-02") or 0) < 60
    with session_scope(engine) as s:
        assert reconcile_skew_alerts(s, 120) == 2
    assert open_alerts(engine).keys() == {"cam-00", "cam-01"}
    with session_scope(engine) as s:  # nothing new: nothing changes
        assert reconcile_skew_alerts(s, 120) == 0

    # A control plane that subscribes later gets the retained (old) statuses replayed:
    # they measure nothing. cam-00's clock was fixed and it reconnected: that counts.
    with session_scope(engine) as s:
        for d in s.exec(select(Device)):
            d.clock_skew_s = None
            s.add(d)
    running = adapter(engine, mosquitto, send, "cam-02")
    try:
        online(send, "cam-00", timedelta(), retain=False)
        wait_for(lambda: skew_of(engine, "cam-00") is not None, what="live status applied")
    finally:
        running.stop()
    assert abs(skew_of(engine, "cam-00") or 0) < 60
    assert skew_of(engine, "cam-01") is None  # only its retained, stale copy came
    with session_scope(engine) as s:
        reconcile_skew_alerts(s, 120)
    assert open_alerts(engine) == {}


@pytest.mark.parametrize("skew", [FAST, SLOW], ids=["10min-fast", "70min-slow"])
def test_ack_deadline_runs_on_the_control_planes_clock(
    engine: Engine, mosquitto: Mosquitto, send: Send, skew: timedelta
) -> None:
    """The device came online (by its clock, 10 minutes ahead or 70 behind) and never
    acknowledges: its row fails once ``ack_timeout_s`` has passed on our clock, neither
    ten minutes later nor at once."""
    fleet = Fleet(engine, 2)
    running = adapter(engine, mosquitto, send, "cam-01")
    try:
        online(send, "cam-00", skew, retain=False)
        wait_for(lambda: skew_of(engine, "cam-00") is not None, what="status applied")
    finally:
        running.stop()
    ro = fleet.start(waves=["100%"], ids=["cam-00"],
                     gates=GATES.model_copy(update={"ack_timeout_s": 60}))
    with Session(engine) as s:
        row = s.exec(select(RolloutDevice)).one()
        device = s.get(Device, "cam-00")
        assert row.state == "pending" and row.released_at is not None
        assert device is not None and device.status_at is not None
        assert abs(device.status_at - datetime.now(UTC)) < timedelta(minutes=5)  # ours
        fleet.now = max(row.released_at, device.status_at)

    def row_state() -> str:
        with Session(engine) as s:
            return s.exec(select(RolloutDevice.state)).one()

    fleet.step(59)
    fleet.tick(ro)
    assert row_state() == "pending"
    fleet.step(2)
    fleet.tick(ro)
    assert row_state() == "failed"
