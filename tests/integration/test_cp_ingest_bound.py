"""Ingest's memory is bounded while the broker holds a backlog, against a real Mosquitto
(default in-flight limit of 20) and a real SQLite store.

Mosquitto 2.0 releases up to its in-flight limit of queued messages for every PUBACK it
gets, so a writer slower than the fleet used to collect thousands of unacknowledged
messages in its queue. Here the store is held until thousands wait at the broker, then
written slowly: ingest never holds more than ``max_queued``, and stores every window once."""

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

from control_plane.ingest.adapter import MqttAdapter
from control_plane.testing import telemetry_window
from protocols import TelemetryWindow, encode, telemetry_topic
from tests.conftest import Mosquitto, wait_for

pytestmark = pytest.mark.slow
WINDOWS = 1500
MAX_QUEUED = 100


class SlowStore(MqttAdapter):
    """Writes nothing until ``gate`` opens, then lags the broker (a busy store)."""

    gate = threading.Event()

    def _write_windows(self, windows: Sequence[TelemetryWindow]) -> Counter[str]:
        self.gate.wait(60)
        time.sleep(0.005)
        return super()._write_windows(windows)


@pytest.fixture
def engine(cam0_store: Engine) -> Engine:
    return cam0_store


def held() -> float:
    return REGISTRY.get_sample_value("parkwatch_cp_ingest_queue_depth") or 0.0


def stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(  # type: ignore[return-value]
            "SELECT count(*), count(DISTINCT seq) FROM telemetry_window")).one())


def test_ingest_holds_at_most_max_queued_while_the_broker_keeps_a_backlog(
    engine: Engine, mosquitto: Mosquitto
) -> None:
    adapter = SlowStore(mosquitto.url, engine, client_id="bound", max_queued=MAX_QUEUED)
    adapter.gate.clear()
    peak = [0.0]
    sampling = threading.Event()

    gauge_before = held()  # the gauge is process-wide: other tests' adapters count too

    def sample() -> None:
        while not sampling.wait(0.002):
            peak[0] = max(peak[0], adapter.pipeline.held)

    sampler = threading.Thread(target=sample, daemon=True)
    fleet = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet")
    fleet.max_inflight_messages_set(100)
    adapter.start()
    try:
        assert adapter.wait_connected(15)
        sampler.start()
        fleet.connect("127.0.0.1", mosquitto.port)
        fleet.loop_start()
        infos = [fleet.publish(telemetry_topic("cam-0"),
                               encode(telemetry_window("cam-0", seq)), qos=1)
                 for seq in range(WINDOWS)]
        for info in infos:
            info.wait_for_publish(30)
        assert all(info.is_published() for info in infos)
        assert stored(engine)[0] == 0  # all of it at the broker or in ingest's queue
        adapter.gate.set()  # PUBACKs flow: the broker sends its backlog in bursts
        wait_for(lambda: stored(engine)[0] >= WINDOWS, timeout=180, what="every window stored")
    finally:
        sampling.set()
        adapter.gate.set()
        fleet.loop_stop()
        fleet.disconnect()
        adapter.stop()
    assert stored(engine) == (WINDOWS, WINDOWS)  # each once
    print(f"{WINDOWS} windows through a lagging store: at most {peak[0]:.0f} held by ingest "
          f"(bound {MAX_QUEUED})")
    assert 0 < peak[0] <= MAX_QUEUED
    assert adapter.pipeline.held == 0
    assert held() == gauge_before
