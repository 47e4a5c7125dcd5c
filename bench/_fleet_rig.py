"""The fleet benches' rig: a private Mosquitto on a free port, fresh PostgreSQL databases
(dropped after), and what an ingest worker's metrics and the store say (connected,
windows stored, CPU seconds of the worker and of PostgreSQL's backends).

Shared by ``fleet_ingest.py``, ``fleet_scale.py``, ``fleet_page.py``, ``ingest_drift.py``
and ``rollout_fleet.py``; ``fleet_report.py`` reaches it through ``fleet_ingest``, which
measures the broker's ceiling with ``_broker_ceiling.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from control_plane.store.db import session_scope
from control_plane.store.models import Device
from scripts.fleet_synth import SimConfig, device_ids, device_labels
from scripts.loop import Loop, free_port, wait_until

PG_ADMIN = os.environ.get(
    "PARKWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def add_devices(engine: sa.Engine, config: SimConfig) -> None:
    """The fleet's rows, written straight to the store: provisioning one by one over HTTP
    (about 15 devices/s on this loaded machine) is not what is measured, and the benches'
    brokers take anonymous clients, so the simulated devices need no credentials."""
    with session_scope(engine) as session:
        for i, device_id in enumerate(device_ids(config.prefix, config.devices)):
            session.add(Device(device_id=device_id, labels=device_labels(config, i)))


def wait_port(port: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def postgres_db() -> str | None:
    try:
        import psycopg

        dsn = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
        name = f"pw_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no server: the PostgreSQL rows are skipped
        print(f"PostgreSQL not used: {str(exc).splitlines()[0]}", file=sys.stderr)
        return None
    return f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"


def drop_postgres_db(url: str) -> None:
    import psycopg

    dsn = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def stored(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM telemetry_window")).scalar_one())


def backend_cpu(engine: sa.Engine) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving this database but the bench's
    own (the server is local: its processes' /proc/PID/stat); {} on SQLite, whose work is
    in the worker's own CPU time."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        pids = conn.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")).scalars().all()
    out = {}
    for pid in pids:
        try:
            out[int(pid)] = process_cpu(int(pid))
        except OSError:  # gone, or not readable here
            continue
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds so far (user and system) of local process ``pid``."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def thread_cpu(tid: int) -> float:
    """CPU seconds so far (user and system) of thread ``tid`` of this process
    (``threading.Thread.native_id``)."""
    return _stat_cpu(Path(f"/proc/self/task/{tid}/stat"))


def _stat_cpu(stat: Path) -> float:
    # utime and stime: fields 14 and 15, after the command name in parentheses
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connected(port: int) -> bool:
    """Whether every broker connection (lane) of the worker behind metrics ``port`` is up
    (it subscribes first)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    lanes = [s.value for f in text_string_to_metric_families(text) for s in f.samples
             if s.name == "parkwatch_cp_mqtt_connected"]
    return bool(lanes) and all(v == 1 for v in lanes)


def spawn_ingest_workers(loop: Loop, workers: int, client_prefix: str, batch: int,
                         env: dict[str, str]) -> None:
    """``workers`` `serve --role ingest` processes in one shared subscription, each with
    its own metrics port; returns once every one is connected."""
    ports = []
    for i in range(workers):
        port = free_port()
        ports.append(port)
        loop.spawn(f"ingest-{i}", "serve", "--role", "ingest",
                   PARKWATCH_DATA_DIR=str(loop.workdir / f"ingest-{i}"),
                   PARKWATCH_METRICS_PORT=str(port), PARKWATCH_INGEST_SHARE_GROUP="ingest",
                   PARKWATCH_MQTT_CLIENT_ID=f"{client_prefix}-{i}",
                   PARKWATCH_INGEST_BATCH_SIZE=str(batch), **env)
    for port in ports:
        wait_port(port)
        wait_until(lambda p=port: connected(p), 120, "an ingest worker")  # type: ignore[misc]


def worker_stats(port: int) -> tuple[float, float, float]:
    """(windows, transactions, CPU seconds) of the worker behind metrics ``port``."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return (values.get("parkwatch_cp_ingest_batch_windows_sum", 0.0),
            values.get("parkwatch_cp_ingest_batch_windows_count", 0.0),
            values.get("process_cpu_seconds_total", 0.0))


def start_broker(tmp: Path, inflight: int) -> tuple[int, subprocess.Popen[bytes]]:
    port = free_port()
    conf = tmp / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"max_queued_messages 100000\nmax_inflight_messages {inflight}\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    wait_port(port)
    return port, broker


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:  # a loaded machine can take long to stop a worker: never leave one behind
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
