"""A batch of device messages (statuses, reported states, events, interleaved as a rollout
sends them) through the MQTT adapter's ingest pipeline into a real store (SQLite and
PostgreSQL): one transaction and a fixed handful of statements whatever its size, with
the same effect as storing the messages one by one in arrival order."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.ingest.adapter import MqttAdapter
from control_plane.store.models import Device, EventRecord, RolloutDevice
from control_plane.testing import reported_state
from protocols import (
    DeviceEvent,
    DeviceStatus,
    encode,
    events_topic,
    reported_topic,
    status_topic,
)
from tests.rollout_kit import GATES, Fleet


def message(topic: str, payload: bytes) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(topic=topic.encode())
    msg.payload = payload
    return msg


def rollout_traffic(store: Engine, n: int) -> tuple[Fleet, str, list[paho.MQTTMessage]]:
    """``n`` devices in a one-wave rollout; what they send on handling it: a new
    connection's ``online``, the reported state that acknowledges, the ``activated``
    event; and one message of each kind from a device never provisioned."""
    fleet = Fleet(store, n)
    ro = fleet.start(waves=["100%"], max_devices_per_minute=1_000_000,
                     gates=GATES.model_copy(update={"min_windows": 0}))
    fleet.tick(ro)
    with Session(store) as s:
        revisions = {d.device_id: d.desired_revision for d in s.exec(select(Device))}
    messages = []
    for device_id in [*fleet.ids, "ghost"]:
        messages += [
            message(status_topic(device_id), encode(DeviceStatus(
                device_id=device_id, state="online", agent_version="0.2.0",
                session="0123456789ab-2"))),
            message(reported_topic(device_id), encode(reported_state(
                device_id, "r2", revision=revisions.get(device_id, 1)))),
            message(events_topic(device_id), encode(DeviceEvent(
                device_id=device_id, seq=7, kind="activated", release_id="r2"))),
        ]
    return fleet, ro, messages


def ingest(store: Engine, messages: list[paho.MQTTMessage]) -> tuple[list[str], int]:
    """Every message through the adapter's pipeline as one batch; the statements and
    commits it took."""
    adapter = MqttAdapter("mqtt://127.0.0.1:1", store, client_id="runs",
                          batch_size=len(messages), max_queued=len(messages))
    statements: list[str] = []
    commits = 0

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    def committed(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    for msg in messages:
        adapter._handle_message(adapter.client, None, msg)
    sa.event.listen(store, "before_cursor_execute", seen)
    sa.event.listen(store, "commit", committed)
    try:
        adapter.pipeline.drain()  # the writer thread's work, here (the adapter is not started)
    finally:
        sa.event.remove(store, "before_cursor_execute", seen)
        sa.event.remove(store, "commit", committed)
    return statements, commits


@pytest.mark.parametrize("n", [10, 40])
def test_a_batch_of_device_messages_is_one_transaction_of_a_few_statements(
    store: Engine, n: int
) -> None:
    fleet, ro, messages = rollout_traffic(store, n)
    statements, commits = ingest(store, messages)
    print(f"injected: {len(messages)} messages ({n} devices x status, reported, event, "
          f"and a ghost's) -> observed {commits} commit, {len(statements)} statements")
    assert commits == 1, statements
    # Read devices, epoch, rollout rows and rollouts; update statuses, reports, last_seen,
    # rollout rows; insert events; (BEGIN on SQLite): the same at 10 and 40 devices.
    assert len(statements) <= 11, statements
    assert sum("store_epoch" in s for s in statements) <= 1
    assert not [s for s in statements if "device.labels" in s]  # no device loaded whole

    with Session(store) as s:
        devices = {d.device_id: d for d in s.exec(select(Device))}
        rows = {r.device_id: r.state for r in s.exec(
            select(RolloutDevice).where(RolloutDevice.rollout_id == ro))}
        events = s.exec(select(EventRecord)).all()
    assert set(rows.values()) == {"acknowledged"}
    assert len(events) == n and {e.device_id for e in events} == set(fleet.ids)
    for device_id in fleet.ids:
        device = devices[device_id]
        assert device.online and device.status_session == "0123456789ab-2"
        assert device.clock_skew_s is not None
        # the reported state came after the status: its agent version counts
        assert device.agent_version == "0.1.0"
        assert device.active_release_id == "r2" and device.reported_at is not None
        assert device.last_seen is not None and device.last_seen >= device.reported_at
    assert "ghost" not in devices
    fleet.tick(ro)
    assert fleet.get(ro).state == "completed"


def test_a_device_s_later_message_in_the_batch_sees_its_earlier_one(store: Engine) -> None:
    """Within one batch, a stale report after a newer one and a Will of the connection
    before an ``online`` change nothing; an agent version told after a report wins."""
    fleet, ro, _ = rollout_traffic(store, 2)
    cam = fleet.ids[0]
    with Session(store) as s:
        device = s.get(Device, cam)
        assert device is not None
        rev = device.desired_revision
    ingest(store, [
        message(reported_topic(cam), encode(reported_state(cam, "r2", revision=rev))),
        message(reported_topic(cam), encode(reported_state(cam, "r1", stage="failed",
                                                           revision=rev - 1))),
        message(status_topic(cam), encode(DeviceStatus(
            device_id=cam, state="online", agent_version="0.3.0", session="abcdefabcdef-2"))),
        message(status_topic(cam), encode(DeviceStatus(
            device_id=cam, state="offline", session="abcdefabcdef-1"))),
    ])
    with Session(store) as s:
        device = s.get(Device, cam)
        row = s.exec(select(RolloutDevice).where(RolloutDevice.device_id == cam,
                                                 RolloutDevice.rollout_id == ro)).one()
    assert device is not None
    assert device.active_release_id == "r2" and device.active_stage == "healthy"
    assert device.online and device.status_session == "abcdefabcdef-2"
    assert device.agent_version == "0.3.0"
    assert row.state == "acknowledged"
