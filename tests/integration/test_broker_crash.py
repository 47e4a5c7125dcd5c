"""kill -9 of the broker while an agent's telemetry is in flight: nothing the agent
produced is lost.

Mosquitto acknowledges a QoS 1 PUBLISH from memory and saves its state when it
autosaves, so a crash loses what it acknowledged since. The shipped configuration
(the persistence lines of deploy/mosquitto/mosquitto.conf) narrows that window to a
couple of seconds (``bench/broker_crash.py`` measures it); the agent closes it: rows
acknowledged within ``outbox_resend_seconds`` before a link drops are sent again after
the reconnect, and ingest is idempotent on (device, seq).

Real parts: Mosquitto with the shipped persistence lines, the agent's Outbox and
MqttLink, and an ingest subscriber with a persistent session that is away during the
crashes, so the broker holds its queue (the worst case).
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import parse_mqtt_url
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from protocols import telemetry_topic
from tests.agent_kit import wait_until
from tests.conftest import REPO_ROOT, Mosquitto, start_mosquitto

pytestmark = [pytest.mark.fault, pytest.mark.timeout(240)]
DEVICE = "park1-gate"
PERSISTENCE_KEYS = ("persistence ", "autosave_interval", "autosave_on_changes")


def shipped_persistence(state: Path) -> str:
    conf = (REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    lines = [line for line in conf.splitlines() if line.startswith(PERSISTENCE_KEYS)]
    assert any(line.startswith("persistence true") for line in lines), lines
    return "\n".join([*lines, f"persistence_location {state}/", "user root", ""])


class Ingest:
    """The control plane's side: a persistent session on the telemetry topic, QoS 1."""

    def __init__(self, broker: Mosquitto) -> None:
        self.seqs: list[int] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="ingest",
                                  clean_session=False)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(telemetry_topic(DEVICE), 1)
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.seqs.append(json.loads(m.payload)["seq"])
        self.port = broker.port

    def connect(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def leave(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def missing(produced: int, seen: list[int]) -> str:
    gone = sorted(set(range(produced)) - set(seen))
    return f"{len(gone)} of {produced} missing: {gone[:10]} .. {gone[-5:]}"


def test_broker_killed_mid_stream_loses_nothing_the_agent_produced(tmp_path: Path) -> None:
    state = tmp_path / "broker"
    state.mkdir()
    broker = start_mosquitto(state, shipped_persistence(state))
    ingest = Ingest(broker)
    ingest.connect()
    assert ingest.subscribed.wait(10)
    ingest.leave()  # away: the broker queues for it
    # The ingest session is old in a real fleet, hence saved: save it now (SIGUSR1).
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: (state / "mosquitto.db").exists(), 15, "the broker's first save")
    box = Outbox(tmp_path / "outbox.sqlite3", resend_seconds=120)
    link = MqttLink(DEVICE, parse_mqtt_url(broker.url), box, lambda desired: None, "test")
    link.start()
    produced, kills, rng = 0, 3, random.Random(7)
    try:
        for _ in range(kills):
            wait_until(lambda: link.connected, 30, "the agent connected")
            # A burst is a number of rows spread over a time, not as many rows as the time
            # allows: the outbox keeps acknowledged rows for resending within its bound
            # (max_rows) and drops them first beyond it, by design. Bursts of 0.5-2 s
            # produced 11,800-12,300 rows on a quiet machine and lost the oldest to the
            # bound, not to the crash.
            rows, seconds = rng.randint(1_500, 3_000), rng.uniform(0.5, 2.0)
            start = time.monotonic()
            for k in range(rows):
                box.put("telemetry", telemetry_topic(DEVICE), json.dumps({"seq": produced})
                        .encode())
                produced += 1
                time.sleep(max(0.0, start + seconds * (k + 1) / rows - time.monotonic()))
            broker.kill()
            broker.start()
        assert produced < box.max_rows
        wait_until(lambda: link.connected and box.count() == 0, 60,
                   "the outbox drained after the last restart")
        ingest.connect()
        wait_until(lambda: set(ingest.seqs) >= set(range(produced)), 60,
                   f"all {produced} rows at ingest", lambda: missing(produced, ingest.seqs))
    finally:
        link.stop(flush_seconds=1)
        box.close()
        ingest.leave()
        broker.stop()
    copies = len(ingest.seqs) - len(set(ingest.seqs))
    print(f"injected: kill -9 of the broker {kills} times while {produced} rows went out "
          f"(ingest away) -> observed all {produced} at ingest, {copies} sent twice "
          "(ingest drops copies)")
    assert set(ingest.seqs) == set(range(produced))
