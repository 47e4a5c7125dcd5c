"""Publish order across processes: the retained desired state is the store's newest.

Two real processes share one PostgreSQL store and one real Mosquitto, each with its own
MQTT adapter, as two API replicas do: one makes operator actions (``start
--supersede``, then abort or rollback), the other ticks the rollouts. A message one of
them queued could reach the broker after the lock was released, behind the other's
newer one, and then stay retained. Afterwards the
retained desired state of every device must carry the revision and release the store
holds.

The ticking replica reaches the broker over a link with 500 ms of latency (a relay
here; another host in production), and releases rate-limited waves a few devices per
tick, while the operator's replica, on a fast link, supersedes, aborts and rolls back:
the window in which a queued message can be overtaken is then wide enough to be hit.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import random
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.config.rollout_policy import RolloutPolicy
from control_plane.errors import ConflictError
from control_plane.ingest.adapter import MqttAdapter
from control_plane.rollouts import service as rollouts
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import Device, RolloutDevice
from protocols import DesiredState, decode, desired_topic, parse_device_topic
from tests.conftest import Mosquitto, wait_for
from tests.rollout_kit import GATES, Fleet

pytestmark = [pytest.mark.postgres]
DEVICES = 40  # more messages per action than paho keeps in flight: some wait in its queue
ROUNDS = 6
# Rate-limited, so ticks (not only the start) release devices.
POLICY = RolloutPolicy(waves=["100%"], max_devices_per_minute=600, spread_label=None,
                       gates=GATES)


class SlowLink:
    """A TCP relay to the broker that delays what the client sends by ``delay_s``."""

    def __init__(self, port: int, delay_s: float) -> None:
        self.port, self.delay_s = port, delay_s
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.server.accept()
                broker = socket.create_connection(("127.0.0.1", self.port))
                late: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(client, late), daemon=True).start()
                threading.Thread(target=self._send, args=(late, broker), daemon=True).start()
                threading.Thread(target=self._pump, args=(broker, client), daemon=True).start()

    def _read(self, src: socket.socket, late: queue.Queue[tuple[float, bytes]]) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                late.put((time.monotonic() + self.delay_s, data))
        late.put((0.0, b""))

    @staticmethod
    def _send(late: queue.Queue[tuple[float, bytes]], dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                due, data = late.get()
                if not data:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                dst.sendall(data)
        dst.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        dst.close()

    def close(self) -> None:
        self.server.close()


def replica(url: str, mqtt_url: str, role: str, done: Any) -> None:
    """One process with its own engine and MQTT adapter: the operator starts a rollout,
    and as soon as the ticks have released more of it, aborts or rolls it back, a few
    times; the other process ticks until the operator is ``done``."""
    engine = create_db_engine(url)
    adapter = MqttAdapter(mqtt_url, engine, client_id=f"{role}-{uuid.uuid4().hex[:6]}",
                          subscribe=False, clean_session=True)
    adapter.start()
    rng = random.Random(role)
    try:
        assert adapter.wait_connected(30)
        if role == "ticks":
            with Session(engine) as s:
                rollouts.republish_desired(s, adapter)  # every device has a retained state
            while not done.is_set():
                with Session(engine, expire_on_commit=False) as s:
                    rollouts.tick_all(s, adapter)
                time.sleep(0.05)
            return
        for _ in range(ROUNDS):
            with Session(engine, expire_on_commit=False) as s:
                ro = rollouts.start_rollout(s, adapter, rng.choice(["r1", "r2"]), None,
                                            "active", who="ops", policy=POLICY, supersede=True)
                _ticked(engine, ro.rollout_id)  # the ticks released more: act right away
                with contextlib.suppress(ConflictError):
                    rollouts.act(s, adapter, ro.rollout_id,
                                 rng.choice(["abort", "abort", "rollback"]), who="ops")
        done.set()
    finally:
        done.set()
        adapter.stop()
        engine.dispose()


def _ticked(engine: Engine, rollout_id: str, timeout_s: float = 10.0) -> None:
    """Wait until the other process has released more of the rollout (committed, its
    desired states maybe still on their way to the broker)."""
    def pending() -> int:
        with Session(engine) as s:
            return int(s.exec(select(func.count()).select_from(RolloutDevice).where(
                RolloutDevice.rollout_id == rollout_id,
                RolloutDevice.state == "pending")).one())

    start, deadline = pending(), time.monotonic() + timeout_s
    while pending() <= start and time.monotonic() < deadline:
        time.sleep(0.01)


def retained(mosquitto: Mosquitto, n: int) -> dict[str, DesiredState]:
    """Every device's retained desired state, as a device subscribing now gets it."""
    got: dict[str, DesiredState] = {}
    lock = threading.Lock()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        device_id, _kind = parse_device_topic(msg.topic)
        with lock:
            got[device_id] = decode(DesiredState, msg.payload)

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe(desired_topic("any").replace("/any/", "/+/"), qos=1)
    client.loop_start()
    try:
        wait_for(lambda: len(got) >= n, 30, f"{n} retained desired states")
    finally:
        client.loop_stop()
        client.disconnect()
    return got


def test_the_retained_desired_state_is_the_stores_newest_across_processes(
    postgres_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    engine = create_db_engine(postgres_url)
    try:
        Fleet(engine, DEVICES)
        ctx = multiprocessing.get_context("spawn")
        link = SlowLink(mosquitto.port, 0.5)
        done = ctx.Event()
        procs = [ctx.Process(target=replica, args=(postgres_url, url, role, done))
                 for role, url in [("operator", mosquitto.url), ("ticks", link.url)]]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
        link.close()
        assert [p.exitcode for p in procs] == [0, 0]
        with Session(engine) as s:
            held = {d.device_id: d for d in s.exec(select(Device)).all()}
        assert max(d.desired_revision for d in held.values()) > 3  # they did write
        got = retained(mosquitto, len(held))
        stale = {d: (got[d].revision, got[d].release_id, held[d].desired_revision,
                     held[d].desired_release_id)
                 for d in held
                 if (got[d].revision, got[d].release_id)
                 != (held[d].desired_revision, held[d].desired_release_id)}
        assert not stale, f"retained (revision, release) vs the store's: {stale}"
    finally:
        engine.dispose()
