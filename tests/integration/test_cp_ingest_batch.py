"""Batched MQTT ingest with manual PUBACKs, against a real Mosquitto (default in-flight limit
of 20 messages per client) and a real SQLite store: windows are written in batches, every
kind of message keeps its turn, and a store outage loses nothing that was acknowledged."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection

from control_plane.ingest.adapter import MqttAdapter
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import reported_state, telemetry_window
from protocols import (
    DeviceStatus,
    encode,
    events_topic,
    reported_topic,
    status_topic,
    telemetry_topic,
)
from protocols.messages import DeviceEvent
from tests.conftest import Mosquitto, wait_for

pytestmark = pytest.mark.slow
DEVICES = [f"cam-{i}" for i in range(5)]
BROKER_INFLIGHT = 20  # Mosquitto's default max_inflight_messages



def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def outcome(kind: str, result: str) -> float:
    return metric("parkwatch_cp_mqtt_messages_total", kind=kind, outcome=result)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The store; a held lock surfaces as a transient error within 0.1 s (SQLite busy
    timeout, PostgreSQL lock_timeout) instead of blocking the writer."""
    upgrade(database_url)
    eng = create_db_engine(database_url)

    def short_lock_wait(conn: DBAPIConnection, _record: Any) -> None:
        cur = conn.cursor()
        if eng.dialect.name == "sqlite":
            cur.execute("PRAGMA busy_timeout=100")
        else:
            cur.execute("SET lock_timeout = '100ms'")
            conn.commit()  # a SET in a rolled-back transaction would be undone
        cur.close()

    sa.event.listen(eng, "connect", short_lock_wait)
    with session_scope(eng) as session:
        for device_id in DEVICES:
            session.add(Device(device_id=device_id, labels={}))
    yield eng
    eng.dispose()


@contextmanager
def running_adapter(engine: Engine, broker: Mosquitto, client_id: str) -> Iterator[MqttAdapter]:
    adapter = MqttAdapter(broker.url, engine, client_id=client_id)
    adapter.start()
    try:
        assert adapter.wait_connected(15)
        yield adapter
    finally:
        adapter.stop()


@contextmanager
def publisher(broker: Mosquitto) -> Iterator[Callable[[str, bytes], paho.MQTTMessageInfo]]:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet-sim")
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        yield lambda topic, payload: client.publish(topic, payload, qos=1)
    finally:
        client.disconnect()
        client.loop_stop()


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM telemetry_window")).scalar_one())


def subscribed(engine: Engine, send: Callable[[str, bytes], Any], seq: int) -> None:
    """Wait until the adapter's subscription is in place: a probe window gets stored."""
    before = stored(engine)
    send(telemetry_topic("cam-0"), encode(telemetry_window("cam-0", seq))).wait_for_publish(10)
    wait_for(lambda: stored(engine) > before, what="probe window stored")


@contextmanager
def store_locked(engine: Engine) -> Iterator[None]:
    """Another process holds a write lock: every telemetry write fails as busy (SQLite) or
    lock timeout (PostgreSQL), while reads go on."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as pg:
        pg.execute("LOCK TABLE telemetry_window IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


def test_burst_is_stored_once_in_batches(engine: Engine, mosquitto: Mosquitto) -> None:
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    outcomes = ("stored", "duplicate", "error", "invalid")
    before = {o: outcome("telemetry", o) for o in outcomes}
    batches = metric("parkwatch_cp_ingest_batch_windows_count")
    windows = metric("parkwatch_cp_ingest_batch_windows_sum")
    singles = metric("parkwatch_cp_ingest_batch_windows_bucket", le="1.0")
    with running_adapter(engine, mosquitto, "cp-burst") as adapter, \
            publisher(mosquitto) as send:
        subscribed(engine, send, 1000)
        sa.event.listen(engine, "commit", on_commit)
        infos, duplicates = [], 0
        for seq in range(1, 101):  # 500 windows from 5 devices, every 10th sent twice
            for device_id in DEVICES:
                payload = encode(telemetry_window(device_id, seq))
                infos.append(send(telemetry_topic(device_id), payload))
                if seq % 10 == 0:
                    infos.append(send(telemetry_topic(device_id), payload))
                    duplicates += 1
        for info in infos:
            info.wait_for_publish(30)
        total = len(infos)
        wait_for(lambda: outcome("telemetry", "stored") + outcome("telemetry", "duplicate")
                 - before["stored"] - before["duplicate"] >= total + 1, what="burst handled")
        wait_for(lambda: adapter.pipeline.held == 0, what="every message acknowledged")
        sa.event.remove(engine, "commit", on_commit)

    got = {o: outcome("telemetry", o) - before[o] for o in outcomes}
    assert stored(engine) == 501  # with the probe
    assert got == {"stored": 501, "duplicate": duplicates, "error": 0, "invalid": 0}
    n_batches = metric("parkwatch_cp_ingest_batch_windows_count") - batches
    n_windows = metric("parkwatch_cp_ingest_batch_windows_sum") - windows
    n_singles = metric("parkwatch_cp_ingest_batch_windows_bucket", le="1.0") - singles
    assert n_windows == total + 1
    assert n_batches < n_windows / 2, "windows were not batched"
    assert commits < total / 2, (commits, total)
    print(f"injected: {total} windows ({duplicates} re-sent) from {len(DEVICES)} devices, "
          f"broker in-flight limit {BROKER_INFLIGHT} -> observed {int(n_batches)} batches "
          f"(mean {n_windows / n_batches:.1f} windows, {int(n_singles)} of 1 window), "
          f"{commits} commits, 500 rows stored once")


def test_every_kind_keeps_its_turn(engine: Engine, mosquitto: Mosquitto) -> None:
    """Status, reported, events and invalid payloads between windows are handled in
    arrival order by the one writer (visible in the rows' receipt times)."""
    before = {(k, o): outcome(k, o) for k in ("status", "reported", "events", "telemetry")
              for o in ("applied", "stored", "invalid")}
    with running_adapter(engine, mosquitto, "cp-order"), publisher(mosquitto) as send:
        subscribed(engine, send, 1000)
        seq = iter(range(1, 1000))
        sequence = [
            (status_topic("cam-1"), encode(DeviceStatus(device_id="cam-1", state="online",
                                                        agent_version="1.2.3"))),
            *[(telemetry_topic("cam-1"), encode(telemetry_window("cam-1", next(seq))))
              for _ in range(10)],
            (events_topic("cam-1"), encode(DeviceEvent(device_id="cam-1", seq=1,
                                                       kind="activated"))),
            (telemetry_topic("cam-1"), b"not json"),
            (reported_topic("cam-1"), encode(reported_state("cam-1", None))),
            *[(telemetry_topic("cam-1"), encode(telemetry_window("cam-1", next(seq))))
              for _ in range(10)],
        ]
        for info in [send(topic, payload) for topic, payload in sequence]:
            info.wait_for_publish(10)
        wait_for(lambda: outcome("telemetry", "stored") - before[("telemetry", "stored")] >= 21,
                 what="windows stored")

    def delta(kind: str, result: str) -> float:
        return outcome(kind, result) - before[(kind, result)]

    assert (delta("status", "applied"), delta("reported", "applied"),
            delta("events", "stored"), delta("telemetry", "invalid")) == (1, 1, 1, 1)
    with engine.connect() as conn:
        received = dict(conn.execute(sa.text(
            "SELECT seq, received_at FROM telemetry_window WHERE device_id = 'cam-1'")).all())
        event_at = conn.execute(sa.text("SELECT received_at FROM device_event")).scalar_one()
        device = conn.execute(sa.text(
            "SELECT agent_version, reported IS NOT NULL FROM device WHERE device_id = 'cam-1'"
        )).one()
    assert sorted(received) == list(range(1, 21))
    assert max(received[s] for s in range(1, 11)) <= event_at <= min(
        received[s] for s in range(11, 21))
    assert tuple(device) == ("0.1.0", 1)  # the reported state came after the status


def test_store_outage_applies_back_pressure_and_loses_nothing(
    engine: Engine, mosquitto: Mosquitto
) -> None:
    """What this adapter holds and how its own writes fail are read from the adapter and
    from this test's engine: the ingest gauges are process-wide, and another adapter in the
    same pytest process (a test before this one) may still move them."""
    failed_writes = 0

    def on_error(_context: Any) -> None:
        nonlocal failed_writes
        failed_writes += 1

    retries = metric("parkwatch_cp_ingest_store_retries_total")
    down = metric("parkwatch_cp_ingest_store_down")
    with running_adapter(engine, mosquitto, "cp-outage") as adapter, \
            publisher(mosquitto) as send:
        subscribed(engine, send, 1000)
        sa.event.listen(engine, "handle_error", on_error)
        with store_locked(engine):
            infos = [send(telemetry_topic(DEVICES[i % 5]), encode(telemetry_window(
                DEVICES[i % 5], i // 5 + 1))) for i in range(100)]
            # The broker stops at its in-flight limit: nothing was acknowledged.
            wait_for(lambda: adapter.pipeline.held == BROKER_INFLIGHT, what="in-flight full")
            wait_for(lambda: failed_writes >= 1, what="a write refused by the locked store")
            later = failed_writes + 2
            wait_for(lambda: failed_writes >= later, what="more retries")
            assert adapter.pipeline.held == BROKER_INFLIGHT  # still nothing acknowledged
            assert stored(engine) == 1
            assert metric("parkwatch_cp_ingest_store_down") >= down + 1
            assert metric("parkwatch_cp_ingest_store_retries_total") > retries
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: stored(engine) == 101, what="every window stored after the outage")
        wait_for(lambda: adapter.pipeline.held == 0, what="every message acknowledged")
        sa.event.remove(engine, "handle_error", on_error)
        assert metric("parkwatch_cp_ingest_store_down") == down
    print(f"injected: store locked while 100 windows arrived -> observed "
          f"{BROKER_INFLIGHT} unacknowledged at the broker's limit, "
          f"{failed_writes} writes refused and retried, "
          f"all 100 stored after the lock was released")


def test_unacknowledged_windows_come_back_after_a_restart(
    engine: Engine, mosquitto: Mosquitto
) -> None:
    """The adapter stops while the store is down: it acknowledges nothing it did not write,
    and the broker hands every window to the next adapter on the same persistent session."""
    with publisher(mosquitto) as send:
        with running_adapter(engine, mosquitto, "cp-restart") as adapter:
            subscribed(engine, send, 1000)
            with store_locked(engine):
                infos = [send(telemetry_topic(DEVICES[i % 5]), encode(telemetry_window(
                    DEVICES[i % 5], i // 5 + 1))) for i in range(60)]
                wait_for(lambda: metric("parkwatch_cp_ingest_store_down") >= 1,
                         what="store down")
                adapter.stop()  # with the store down: leaves the queue unacknowledged
            for info in infos:
                info.wait_for_publish(10)
            assert stored(engine) == 1
        with running_adapter(engine, mosquitto, "cp-restart"):
            wait_for(lambda: stored(engine) == 61, what="redelivered windows stored")
    with engine.connect() as conn:
        seqs = conn.execute(sa.text(
            "SELECT count(DISTINCT seq) FROM telemetry_window WHERE device_id = 'cam-3'"
        )).scalar_one()
    assert seqs == 12
    print("injected: adapter stopped during a store outage with 60 windows in flight -> "
          "observed all 60 redelivered by the broker and stored by the next adapter")


def test_invalid_payloads_are_acknowledged_and_dropped(
    engine: Engine, mosquitto: Mosquitto
) -> None:
    """More invalid messages than the broker's in-flight limit: if they were not
    acknowledged, the broker would stop sending and the valid windows after them would
    never arrive."""
    invalid = outcome("telemetry", "invalid")
    bad = [b"not json", b'{"schema": "parkwatch/v1", "device_id": "cam-2"}',
           encode(telemetry_window("cam-4", 1))]  # the payload names another device
    with running_adapter(engine, mosquitto, "cp-invalid") as adapter, \
            publisher(mosquitto) as send:
        subscribed(engine, send, 1000)
        infos = [send(telemetry_topic("cam-2"), bad[i % 3]) for i in range(2 * BROKER_INFLIGHT)]
        infos += [send(telemetry_topic("cam-2"), encode(telemetry_window("cam-2", s)))
                  for s in range(1, 6)]
        for info in infos:
            info.wait_for_publish(10)
        wait_for(lambda: stored(engine) == 6, what="valid windows after the invalid ones")
        wait_for(lambda: adapter.pipeline.held == 0, what="every message acknowledged")
    assert outcome("telemetry", "invalid") - invalid == 2 * BROKER_INFLIGHT
