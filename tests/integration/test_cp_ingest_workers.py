"""Two ingest workers (real `parkwatch serve --role ingest` processes) share the telemetry
of a fleet through an MQTT shared subscription on a real Mosquitto, writing to one store
(PostgreSQL, and SQLite in WAL mode): every window is stored exactly once and both
workers take a share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from control_plane.schemas import DeviceCreate
from control_plane.services import auth, devices
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.testing import registration, telemetry_window
from protocols import encode, telemetry_topic
from tests.conftest import REPO_ROOT, Mosquitto, free_port, wait_for, wait_for_port

pytestmark = pytest.mark.slow
DEVICES = [f"cam-{i}" for i in range(5)]
WINDOWS_PER_DEVICE = 60  # 300 windows
PROBE = "probe-0"



def metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def lanes_connected(port: int) -> bool:
    """Every broker connection of the worker is up (one series per lane)."""
    lanes = [v for (name, _), v in metrics(port).items()
             if name == "parkwatch_cp_mqtt_connected"]
    return bool(lanes) and all(v == 1 for v in lanes)


def ingest(port: int, outcome: str) -> float:
    key = ("parkwatch_cp_ingest_total", (("kind", "telemetry"), ("outcome", outcome)))
    return metrics(port).get(key, 0.0)


def received(port: int) -> float:
    key = ("parkwatch_cp_ingest_received_total", (("kind", "telemetry"),))
    return metrics(port).get(key, 0.0)


@pytest.fixture
def store(database_url: str) -> Iterator[sa.Engine]:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    endpoints = devices.AgentEndpoints("http://cp", "mqtt://broker", ["pem"])
    with session_scope(engine) as session:
        for device_id in [*DEVICES, PROBE]:
            devices.provision(session, DeviceCreate(device_id=device_id), endpoints, who="test")
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    yield engine
    engine.dispose()


@pytest.fixture
def workers(
    store: sa.Engine, database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> Iterator[list[int]]:
    """Two ingest processes in one share group; yields their metrics ports."""
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    try:
        for i, port in enumerate(ports):
            env = {
                **os.environ,
                "PARKWATCH_DATA_DIR": str(tmp_path / f"worker{i}"),
                "PARKWATCH_DATABASE_URL": database_url,
                "PARKWATCH_MQTT_URL": mosquitto.url,
                "PARKWATCH_INGEST_SHARE_GROUP": "ingest",
                "PARKWATCH_MQTT_CLIENT_ID": f"cp-ingest-{i}",
                "PARKWATCH_METRICS_PORT": str(port),
                "PARKWATCH_LOG_LEVEL": "WARNING",
            }
            env.pop("PARKWATCH_CONFIG", None)
            with (tmp_path / f"worker{i}.log").open("wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "parkwatch_cli", "serve", "--role", "ingest"],
                    cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                ))
        for port in ports:
            wait_for_port(port, timeout=60)
            wait_for(lambda p=port: lanes_connected(p), what="worker connected")
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for i, proc in enumerate(procs):
            try:
                code = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            assert code == 0, (tmp_path / f"worker{i}.log").read_text()[-3000:]


def stored(engine: sa.Engine, device_ids: list[str]) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM telemetry_window WHERE device_id IN :ids")
        query = query.bindparams(sa.bindparam("ids", expanding=True))
        return int(conn.execute(query, {"ids": device_ids}).scalar_one())


@pytest.mark.fault
def test_two_ingest_workers_store_every_window_once(
    workers: list[int], store: sa.Engine, mosquitto: Mosquitto
) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="fleet-sim")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def send(device_id: str, seq: int) -> paho.MQTTMessageInfo:
        return client.publish(
            telemetry_topic(device_id), encode(telemetry_window(device_id, seq)), qos=1
        )

    try:
        # Until both workers have taken a message, their shared subscriptions are not
        # both in place yet: warm up with probe windows (not counted below).
        probes = 0
        while min(received(p) for p in workers) == 0:
            probes += 1
            send(PROBE, probes).wait_for_publish(10)
            time.sleep(0.05)
            assert probes < 400, "a worker never received a shared message"
        wait_for(lambda: stored(store, [PROBE]) == probes, what="probes stored")
        before = [received(p) for p in workers]

        infos = []
        duplicates = 0
        for seq in range(1, WINDOWS_PER_DEVICE + 1):
            for device_id in DEVICES:
                infos.append(send(device_id, seq))
                if seq % 5 == 0:  # a re-sent window, as after a reconnect
                    infos.append(send(device_id, seq))
                    duplicates += 1
        for info in infos:
            info.wait_for_publish(30)
        expected = len(DEVICES) * WINDOWS_PER_DEVICE
        total_msgs = expected + duplicates

        def all_handled() -> bool:
            done = sum(ingest(p, "stored") + ingest(p, "duplicate") for p in workers)
            return done == total_msgs + probes

        wait_for(all_handled, what="all windows handled")
    finally:
        client.disconnect()
        client.loop_stop()

    assert stored(store, DEVICES) == expected == 300
    with store.connect() as conn:
        dupes = conn.execute(sa.text(
            "SELECT device_id, seq FROM telemetry_window GROUP BY device_id, seq "
            "HAVING count(*) > 1")).all()
        seqs = conn.execute(sa.text(
            "SELECT count(DISTINCT seq) FROM telemetry_window WHERE device_id = 'cam-3'"
        )).scalar_one()
    assert dupes == [] and seqs == WINDOWS_PER_DEVICE
    shares = [received(p) - b for p, b in zip(workers, before, strict=True)]
    assert all(share > 0 for share in shares), shares  # both workers took part
    assert sum(shares) == total_msgs
    assert sum(ingest(p, "stored") for p in workers) == expected + probes
    assert sum(ingest(p, "duplicate") for p in workers) == duplicates
    assert sum(ingest(p, "error") for p in workers) == 0
    print(f"injected: {duplicates} re-sent windows across 2 shared-subscription workers -> "
          f"observed {expected} stored once, shares {shares}, no duplicates")


def test_api_role_publishes_desired_states_but_ingests_nothing(
    store: sa.Engine, database_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "api"
    env = {**os.environ, "PARKWATCH_DATA_DIR": str(data_dir),
           "PARKWATCH_DATABASE_URL": database_url, "PARKWATCH_MQTT_URL": mosquitto.url,
           "PARKWATCH_PORT": str(port), "PARKWATCH_LOG_LEVEL": "WARNING"}
    env.pop("PARKWATCH_CONFIG", None)
    watcher = paho.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
    desired: list[bytes] = []
    watcher.on_message = lambda _c, _u, msg: desired.append(msg.payload)
    watcher.connect("127.0.0.1", mosquitto.port)
    watcher.subscribe("parkwatch/v1/devices/cam-0/desired", qos=1)
    watcher.loop_start()
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parkwatch_cli", "serve", "--role", "api"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/healthz").json()["mqtt"] == "connected",
                 what="api connected")
        # The store fixture provisioned devices, so no bootstrap token was written: make one.
        with session_scope(store) as session:
            _row, secret = auth.create_token(session, "t", ["admin"], who="test")
        http = httpx.Client(base_url=f"{url}/api/v1",
                            headers={"Authorization": f"Bearer {secret}"})
        sha = http.post("/artifacts", content=b"m" * 32).json()["sha256"]
        spec = registration("petnet", [(sha, 32, "int8")])
        assert http.post("/models/petnet/versions",
                         json=spec.model_dump(mode="json")).status_code == 201
        rel = http.post("/releases", json={"model_name": "petnet"}).json()["release_id"]
        assert http.post("/rollouts", json={"release_id": rel, "devices": ["cam-0"]}) \
            .status_code == 201
        wait_for(lambda: any(rel.encode() in p for p in desired), what="desired state")

        info = watcher.publish(telemetry_topic("cam-0"), encode(telemetry_window("cam-0", 1)),
                               qos=1)
        info.wait_for_publish(10)
        # Nothing subscribes to telemetry: the API's own counters never see it.
        assert http.get("/telemetry", params={"device": "cam-0"}).json()["total"] == 0
        assert "parkwatch_cp_ingest_received_total{" not in httpx.get(f"{url}/metrics").text
        http.close()
    finally:
        watcher.disconnect()
        watcher.loop_stop()
        proc.terminate()
        # uvicorn shuts down cleanly, then re-raises SIGTERM: -15 is a clean exit here.
        code = proc.wait(timeout=20)
        assert code in (0, -15), (tmp_path / "api.log").read_text()[-3000:]
