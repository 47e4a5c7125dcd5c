"""Three API replicas (real `parkwatch serve --role api` processes) on one PostgreSQL, one
Mosquitto and one shared data folder (keys, artifacts): the singletons run in one of
them; when it is killed (SIGKILL, mid-rollout) another takes over within two ticks, and
every device is still sent its release exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.testing import registration
from protocols import DesiredState, decode_for_topic, parse_device_topic
from tests.conftest import REPO_ROOT, Mosquitto, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
DEVICES = [f"cam-{i}" for i in range(8)]
TICK_S = 1.0


class Replica:
    def __init__(self, tmp: Path, name: str, database_url: str, mqtt_url: str) -> None:
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
        env.update(
            PARKWATCH_DATA_DIR=str(tmp / "shared"),  # keys, artifacts, admin.token
            PARKWATCH_DATABASE_URL=database_url, PARKWATCH_MQTT_URL=mqtt_url,
            PARKWATCH_PORT=str(self.port), PARKWATCH_MQTT_CLIENT_ID=f"cp-{name}",
            PARKWATCH_ROLLOUT_TICK_SECONDS=str(TICK_S), PARKWATCH_LOG_LEVEL="INFO",
        )
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "parkwatch_cli", "serve", "--role", "api"],
                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def engine_health(self) -> str | None:
        """The rollout engine's health detail, or None while the replica does not answer."""
        try:
            body = httpx.get(f"{self.url}/healthz", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None
        return str(body["services"]["rollout-engine"]["detail"])

    def tries(self) -> int:
        match = re.search(r"tried (\d+) times", self.engine_health() or "")
        assert match, self.engine_health()
        return int(match.group(1))

    def leader_since(self) -> int | None:
        match = re.match(r"leader since try (\d+)", self.engine_health() or "")
        return int(match.group(1)) if match else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def replicas(postgres_url: str, mosquitto: Mosquitto, tmp_path: Path) -> Iterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for names in (["a"], ["b", "c"]):  # the first creates the keys and the admin token
            batch = [Replica(tmp_path, name, postgres_url, mosquitto.url) for name in names]
            started += batch
            for replica in batch:
                wait_for(lambda r=replica: r.engine_health() is not None, 90,  # type: ignore[misc]
                         what=f"replica {replica.name} up", interval=0.2)
        yield started
    finally:
        for replica in started:
            replica.stop()


def leaders(replicas: list[Replica]) -> list[Replica]:
    return [r for r in replicas if r.proc.poll() is None and r.leader_since() is not None]


def start_rollout(api: httpx.Client) -> None:
    for device_id in DEVICES:
        api.post("/api/v1/devices", json={"device_id": device_id}).raise_for_status()
    blob = b"replica-model" * 64
    sha = api.post("/api/v1/artifacts", content=blob).json()["sha256"]
    spec = registration("petnet", [(sha, len(blob), "int8")])
    api.post("/api/v1/models/petnet/versions", json=spec.model_dump(mode="json"))
    release = api.post("/api/v1/releases", json={"model_name": "petnet"}).json()["release_id"]
    api.post("/api/v1/rollouts", json={
        "release_id": release, "devices": DEVICES, "waves": ["100%"],
        "max_devices_per_minute": 60, "gates": {"min_windows": 0}}).raise_for_status()


def test_one_replica_ticks_and_another_takes_over_when_it_dies(
    replicas: list[Replica], mosquitto: Mosquitto, postgres_url: str, tmp_path: Path
) -> None:
    wait_for(lambda: all((r.engine_health() or "").startswith(("leader", "standby"))
                         for r in replicas), 30, what="every replica ticked once", interval=0.2)
    assert len(leaders(replicas)) == 1
    seen: list[DesiredState] = []
    lock = threading.Lock()

    def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        _, kind = parse_device_topic(msg.topic)
        state = decode_for_topic(kind, msg.payload)
        with lock:
            seen.append(state)  # type: ignore[arg-type]

    wire = paho.Client(CallbackAPIVersion.VERSION2, client_id="wire")
    wire.on_message = on_message
    wire.connect("127.0.0.1", mosquitto.port)
    wire.subscribe("parkwatch/v1/devices/+/desired", qos=1)
    wire.loop_start()
    token = (tmp_path / "shared" / "admin.token").read_text().strip()
    leader = leaders(replicas)[0]
    standbys = [r for r in replicas if r is not leader]
    try:
        with httpx.Client(base_url=standbys[0].url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as api:
            start_rollout(api)

        def sent() -> int:
            with lock:
                return len({s.device_id for s in seen})

        wait_for(lambda: sent() >= 3, 60, what="the rollout under way")
        tries_before = {r.name: r.tries() for r in standbys}
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        wait_for(lambda: len(leaders(standbys)) == 1, 30, what="a standby taking over",
                 interval=0.2)
        new = leaders(standbys)[0]
        took = new.leader_since()
        assert took is not None and took - tries_before[new.name] <= 2, new.engine_health()
        wait_for(lambda: sent() == len(DEVICES), 60, what="every device sent its release")
        assert len(leaders(standbys)) == 1
    finally:
        wire.loop_stop()
        wire.disconnect()
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            revisions = dict(conn.execute(sa.text(
                "SELECT device_id, desired_revision FROM device")).all())
    finally:
        engine.dispose()
    assert revisions == dict.fromkeys(DEVICES, 1)  # each device's state written once
    by_revision: dict[tuple[str, int], set[str | None]] = {}
    for state in seen:  # a replica re-publishes on connect: the same state, never another
        by_revision.setdefault((state.device_id, state.revision), set()).add(state.release_id)
    assert all(len(v) == 1 for v in by_revision.values()), by_revision
    assert {k[1] for k in by_revision} == {1}
