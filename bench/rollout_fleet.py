"""Rollout reach: time from `rollouts start` until N devices acknowledge the release.

A real `parkwatch serve` (SQLite; the rollout engine ticks every ``--tick`` s) and a private
Mosquitto; N simulated agents (``scripts/fleet_agents.py``: one real MQTT connection
each, driven by one selector thread per ``--processes`` simulator process, default one
per 4,000 devices; ``scripts/fleet_shards.py``) that act on their desired state like a
healthy agent. The devices' rows are written straight to the store (provisioning over
HTTP, one device at a time, took longer than the rollout). One wave of every device, no
rate limit, acknowledgement-only gates, so the figure is the plumbing: engine tick -> N
retained desired states -> N reported states -> ingest -> completion seen by the API.

    python bench/rollout_fleet.py [--sizes 1000 5000 10000] [--tick 0.5]
    python bench/rollout_fleet.py --postgres --ingest-workers 2   # the production topology

``--ingest-workers N``: `serve --role api` (HTTP API and rollout engine) and N `serve
--role ingest` workers in one shared subscription (batch 100, broker in-flight 100), on
SQLite (one file) or, with ``--postgres``, on a fresh PostgreSQL database
(``PARKWATCH_TEST_POSTGRES_URL``'s server). Without it one `serve` does everything.

Prints, per N: seconds until ``POST /rollouts`` answered, until every device had its
desired state and reported, until the API showed the rollout complete, their ratio
(goal <= 1.5), devices acknowledged per second, and the MQTT messages per device on the
rollout's path (desired in, reported out), side by side from one run on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import _fleet_rig  # noqa: E402 - bench/ helpers: PostgreSQL database, ingest workers
import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from control_plane.store.db import create_db_engine  # noqa: E402
from control_plane.testing import registration  # noqa: E402
from scripts.fleet_agents import Fleet, ManifestCache  # noqa: E402
from scripts.fleet_shards import ShardedFleet  # noqa: E402
from scripts.fleet_synth import SimConfig  # noqa: E402
from scripts.loop import Loop, free_port, wait_until  # noqa: E402

DEVICES_PER_PROCESS = 4000  # simulated devices one selector thread serves here
WORKER_BATCH = 100  # ingest workers' batch, and the broker's in-flight limit with them


def start_mosquitto(tmp: Path, inflight: int = 20) -> tuple[subprocess.Popen[bytes], str]:
    if shutil.which("mosquitto") is None:
        raise SystemExit("mosquitto is not installed: apt-get install -y mosquitto")
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 100000\nmax_connections -1\n"
                    f"max_inflight_messages {inflight}\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"mqtt://127.0.0.1:{port}"


def release(api: httpx.Client) -> str:
    blob = b"bench-model" * 64
    sha = api.post("/api/v1/artifacts", content=blob).json()["sha256"]
    spec = registration("petnet", [(sha, len(blob), "int8")])
    api.post("/api/v1/models/petnet/versions", json=spec.model_dump(mode="json"))
    return str(api.post("/api/v1/releases", json={"model_name": "petnet"}).json()["release_id"])


def cpu_seconds(loop: Loop, broker: int, fleet: Fleet | ShardedFleet,
                engine: sa.Engine) -> dict[str, float]:
    """CPU seconds so far (from /proc) of each process on the rollout's path: the control
    plane's, the broker, the simulator and PostgreSQL's backends (by pid: compare two
    snapshots with ``cpu_spent``)."""
    out = {name: _fleet_rig.process_cpu(proc.popen.pid)
           for name, proc in loop.procs.items() if proc.alive()}
    out["mosquitto"] = _fleet_rig.process_cpu(broker)
    if isinstance(fleet, ShardedFleet):
        out["simulator"] = sum(_fleet_rig.process_cpu(pid) for pid in fleet.pids)
    else:
        out["bench and simulator"] = _fleet_rig.process_cpu(os.getpid())
    out.update({f"postgres-{pid}": cpu for pid, cpu in _fleet_rig.backend_cpu(engine).items()})
    return out


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds between two snapshots; PostgreSQL's backends added up."""
    spent: dict[str, float] = {}
    for name, cpu in after.items():
        key = "postgresql" if name.startswith("postgres-") else name
        spent[key] = spent.get(key, 0.0) + cpu - before.get(name, 0.0)
    return spent


def measure(api: httpx.Client, loop: Loop, broker: int, db_url: str, n: int,
            processes: int) -> dict[str, Any]:
    config = SimConfig(devices=n, prefix=f"b{n}", interval=3600.0, windows=0)
    engine = create_db_engine(db_url)
    try:
        _fleet_rig.add_devices(engine, config)
        return _measure(api, loop, broker, engine, config, processes)
    finally:
        engine.dispose()


def _measure(api: httpx.Client, loop: Loop, broker: int, engine: sa.Engine,
             config: SimConfig, processes: int) -> dict[str, Any]:
    n, mqtt_url = config.devices, loop.broker_url
    token = api.headers["Authorization"].removeprefix("Bearer ")
    fleet: Fleet | ShardedFleet = (
        Fleet(config, mqtt_url, ManifestCache(api)) if processes == 1
        else ShardedFleet(config, mqtt_url, processes, str(api.base_url).rstrip("/"), token))
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    runner.start()
    try:
        def online() -> bool:
            page = api.get("/api/v1/devices", params={"online": "true", "limit": 1})
            return int(page.json()["total"]) >= n

        wait_until(online, 120 + n / 10, f"{n} devices online", interval=0.5)
        ids = [f"b{n}-{i:04d}" for i in range(n)]
        rel = release(api)
        handled_before = fleet.stats.desired_handled
        cpu_before = cpu_seconds(loop, broker, fleet, engine)
        start = time.perf_counter()
        delivered: list[float] = []  # when every device had handled its desired state

        def watch_delivery() -> None:
            while not stop.is_set() and not delivered:
                if fleet.stats.desired_handled - handled_before >= n:
                    delivered.append(time.perf_counter() - start)
                time.sleep(0.02)

        threading.Thread(target=watch_delivery, daemon=True).start()
        ro = api.post("/api/v1/rollouts", json={
            "release_id": rel, "devices": ids, "waves": ["100%"],
            "max_devices_per_minute": 1_000_000, "gates": {"min_windows": 0}}).json()
        answered = time.perf_counter() - start

        def completed() -> bool:
            r = api.get(f"/api/v1/rollouts/{ro['rollout_id']}", params={"device_limit": 0})
            return bool(r.json()["state"] == "completed")

        # Polling is part of the load: the answer counts devices by state, lists none.
        wait_until(completed, 600, f"rollout to {n} devices", interval=0.1)
        seconds = time.perf_counter() - start
        cpu = cpu_spent(cpu_before, cpu_seconds(loop, broker, fleet, engine))
        desired = fleet.stats.desired_handled - handled_before
    finally:
        stop.set()
        runner.join(30)
    # Per device on the rollout's path: the desired state in and the reported state out.
    return {"devices": n, "seconds": seconds, "per_s": n / seconds, "answered": answered,
            "delivered": delivered[0] if delivered else float("nan"),
            "messages_per_device": (desired + desired) / n, "cpu": cpu}


def _row(r: dict[str, Any]) -> str:
    return (f"| {r['devices']:.0f} | {r['answered']:.2f} | {r['delivered']:.2f} | "
            f"{r['seconds']:.2f} | {r['seconds'] / r['delivered']:.2f} | {r['per_s']:.0f} | "
            f"{r['messages_per_device']:.1f} | "
            f"{sum(r['cpu'].values()) * 1000 / r['devices']:.2f} |")


def _cpu_rows(r: dict[str, Any]) -> list[str]:
    """CPU of each process over the rollout (POST until complete seen): seconds and ms a
    device; load-independent, unlike the times."""
    n, cpu = r["devices"], r["cpu"]
    rows = [f"| {n:.0f} | {name} | {s:.2f} | {s * 1000 / n:.3f} |"
            for name, s in sorted(cpu.items(), key=lambda kv: -kv[1])]
    total = sum(cpu.values())
    return [*rows, f"| {n:.0f} | **all** | {total:.2f} | {total * 1000 / n:.3f} |"]


def start_control_plane(loop: Loop, args: argparse.Namespace, db_url: str | None) -> None:
    """One `serve` doing everything, or an API process and ``--ingest-workers`` workers."""
    common = {"PARKWATCH_LOG_LEVEL": "WARNING"}
    if db_url is not None:
        common["PARKWATCH_DATABASE_URL"] = db_url
    role = ["--role", "api"] if args.ingest_workers else []
    loop.spawn("control-plane", "serve", *role, PARKWATCH_ROLLOUT_TICK_SECONDS=str(args.tick),
               **common)
    wait_until(lambda: httpx.get(f"{loop.api_url}/healthz", timeout=2).status_code
               == 200, 60, "the control plane")
    _fleet_rig.spawn_ingest_workers(loop, args.ingest_workers, "rollout-ingest",
                                    WORKER_BATCH, common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--tick", type=float, default=0.5, help="engine tick, seconds")
    parser.add_argument("--processes", type=int, default=0,
                        help="simulator processes (0: one per 4,000 devices; one thread lost "
                        "keepalives past about 8,000 clients on this loaded machine)")
    parser.add_argument("--postgres", action="store_true",
                        help="a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--ingest-workers", type=int, default=0,
                        help="ingest in this many `serve --role ingest` workers (0: in the "
                        "one `serve`)")
    args = parser.parse_args()
    db_url = _fleet_rig.postgres_db() if args.postgres else None
    if args.postgres and db_url is None:
        raise SystemExit("--postgres needs a server: set PARKWATCH_TEST_POSTGRES_URL")
    try:
        with tempfile.TemporaryDirectory() as tmp_dir:
            tmp = Path(tmp_dir)
            broker, mqtt_url = start_mosquitto(
                tmp, WORKER_BATCH if args.ingest_workers else 20)
            loop = Loop(tmp / "loop", mqtt_url=mqtt_url)
            if db_url is None:  # the bench and any workers share the API's file
                db_url = f"sqlite:///{(loop.cp_dir / 'parkwatch.db').resolve()}"
            try:
                start_control_plane(loop, args, db_url)
                token = (loop.cp_dir / "admin.token").read_text().strip()
                with httpx.Client(base_url=loop.api_url, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as api:
                    rows = []
                    for n in args.sizes:  # each row as soon as it is measured
                        processes = args.processes or -(-n // DEVICES_PER_PROCESS)
                        rows.append(measure(api, loop, broker.pid, db_url, n, processes))
                        print(_row(rows[-1]), flush=True)
            finally:
                loop.stop_all()
                broker.terminate()
                broker.wait()
    finally:
        if args.postgres and db_url is not None:
            _fleet_rig.drop_postgres_db(db_url)
    store = "PostgreSQL" if args.postgres else "SQLite"
    topology = (f"API + {args.ingest_workers} ingest workers (batch {WORKER_BATCH})"
                if args.ingest_workers else "one serve")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {store} store, {topology}, engine tick "
          f"{args.tick:g} s\n")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f}\n")
    print("| devices | s until POST /rollouts answered | s until every device had it and "
          "reported | s until the rollout completed | completed / reported (goal <= 1.5) | "
          "devices/s | MQTT messages per device | CPU ms per device, all processes |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(_row(r))
    print("\nCPU over the rollout (POST until complete seen), from /proc:\n")
    print("| devices | process | CPU s | CPU ms per device |\n|---:|---|---:|---:|")
    for r in rows:
        print("\n".join(_cpu_rows(r)))
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"\n{last['devices']:.0f} vs {first['devices']:.0f} devices: time x"
              f"{last['seconds'] / first['seconds']:.1f} for x"
              f"{last['devices'] / first['devices']:.0f} devices")


if __name__ == "__main__":
    main()
