"""Fleet ingest capacity: telemetry windows/s stored by `parkwatch serve --role ingest`.

A simulated fleet (one paho client, QoS 1) publishes telemetry windows of many devices
to a private Mosquitto; real ingest worker processes store them (validation, dedup on
(device, seq), up to ``--batch-size`` windows per transaction, PUBACK after the commit).
The broker here allows ``--inflight`` (100) unacknowledged messages in flight per client,
so batches hold at most that many (Mosquitto's default is 20). Measured in one run, each
configuration right after its own ceiling (a shared machine's load changes by the minute):

- Mosquitto alone: the same publisher and payloads to a trivial QoS 1 subscriber, the
  ceiling ingest is reported against: a paho client that counts and acknowledges on
  receipt (Python, like the workers), ``mosquitto_sub -q 1`` (C, not bound by Python),
  and ``mosquitto_pub -l`` to ``mosquitto_sub`` (no Python at either end);
- SQLite (WAL), 1 worker;
- PostgreSQL, 1 worker and 2 workers in a shared subscription (when a server answers
  at PARKWATCH_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1/test).

    python bench/fleet_ingest.py [--devices 100] [--windows 1500] [--batch-size 100]
                                 [--inflight 100] [--drift] [--cases sqlite pg1 pg2]

A device sends one window per minute by default, so windows/s x 60 is the fleet size
one configuration keeps up with (before any headroom). Each configuration's CPU per
window stored is read from /proc for every process of the run (the publisher's threads,
the broker, each worker, the database's PostgreSQL backends), with the cores that adds
up to at 5,000 windows/s; and per message at the paho ceiling.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from _broker_ceiling import (  # bench/ is on sys.path: scripts run from it
    PROFILE,
    RELEASE,
    Load,
    PublisherCpu,
    broker_alone,
    broker_ceiling,
    fleet_payloads,
    native_ceiling,
    publisher,
)
from _fleet_rig import (
    backend_cpu,
    connected,
    drop_postgres_db,
    postgres_db,
    process_cpu,
    start_broker,
    stop_workers,
    stored,
    wait_port,
    worker_stats,
)
from _ingest_waits import WaitSampler, hot_updates, write_seconds

from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import register_profiled_release
from scripts.loop import free_port

ROOT = Path(__file__).resolve().parents[1]

CASES = ("sqlite", "pg1", "pg2")  # SQLite with 1 worker, PostgreSQL with 1 and 2
GOAL_RATE = 5_000  # windows/s on PostgreSQL with 2 workers (and 0.7 of the ceiling)


def register_release(engine: sa.Engine) -> None:
    """The release the drift windows name, with the reference profile rollups bin on."""
    with session_scope(engine) as s:
        register_profiled_release(s, RELEASE, PROFILE, created_by="bench")


def answers_connected(port: int) -> bool:
    """``connected``, False while the worker does not answer in time (one still starting
    on a loaded machine can take longer than the request's timeout)."""
    try:
        return connected(port)
    except OSError:
        return False


@dataclass(frozen=True)
class Case:
    rate: float  # windows/s stored
    batched: float  # mean windows per transaction
    ceiling: float  # the broker's ceiling measured just before (Python subscriber)
    native: float  # the same with mosquitto_sub as the subscriber
    alone: float  # mosquitto_pub to mosquitto_sub: the broker with no Python at either end
    # CPU seconds per window stored of each process while ingesting (publisher, broker,
    # "worker 1", ..., "PostgreSQL backends" on PostgreSQL), from /proc
    cpu: dict[str, float]
    ceiling_cpu: dict[str, float]  # per message at the paho ceiling: publisher, broker, sub
    # Where a worker's time went besides CPU, from its own metrics and the server's views:
    # mean wall time of one write transaction (statements, commit and any lock waits)
    write_ms: float
    waits: dict[str, float]  # share of the database's backends sampled waiting, by event
    hot: dict[str, float]  # share of updates that were HOT, per table (PostgreSQL)

    @property
    def cpu_us(self) -> float:
        """The workers' CPU time per window stored, microseconds."""
        return sum(v for k, v in self.cpu.items() if k.startswith("worker")) * 1e6

    @property
    def backend_us(self) -> float | None:
        """PostgreSQL backends' CPU time per window stored (None: SQLite, whose work is in
        the workers')."""
        backends = self.cpu.get("PostgreSQL backends")
        return None if backends is None else backends * 1e6


def cpu_now(procs: list[subprocess.Popen[bytes]], broker: subprocess.Popen[bytes],
            engine: sa.Engine, skip: int = 0) -> dict[str, float]:
    """CPU seconds so far of the broker, each worker and each PostgreSQL backend but
    ``skip`` (by pid: a backend that started meanwhile counts from 0)."""
    out = {"broker": process_cpu(broker.pid)}
    out.update({f"worker {i + 1}": process_cpu(p.pid) for i, p in enumerate(procs)})
    out.update({f"backend {pid}": v for pid, v in backend_cpu(engine).items() if pid != skip})
    return out


def cpu_spent(before: dict[str, float], after: dict[str, float], postgres: bool
              ) -> dict[str, float]:
    """CPU seconds between two ``cpu_now``, the backends added up."""
    spent = {k: v - before.get(k, 0.0) for k, v in after.items()
             if not k.startswith("backend ")}
    if postgres:
        spent["PostgreSQL backends"] = sum(v - before.get(k, 0.0) for k, v in after.items()
                                           if k.startswith("backend "))
    return spent


def run_case(url: str, workers: int, load: Load, tmp: Path) -> Case:
    """Ingest with ``workers`` workers, right after measuring the broker's ceiling (the load
    of a shared machine changes within a minute)."""
    upgrade(url)
    engine = create_db_engine(url)
    with session_scope(engine) as session:
        for device_id in load.devices:
            session.add(Device(device_id=device_id, labels={}))
    if load.drift:
        register_release(engine)
    port, broker = start_broker(tmp, load.inflight)
    procs: list[subprocess.Popen[bytes]] = []
    metrics_ports: list[int] = []
    try:
        for i in range(workers):
            metrics = free_port()
            metrics_ports.append(metrics)
            env = {**os.environ, "PARKWATCH_DATA_DIR": str(tmp / f"w{port}-{i}"),
                   "PARKWATCH_DATABASE_URL": url, "PARKWATCH_MQTT_URL":
                   f"mqtt://127.0.0.1:{port}", "PARKWATCH_INGEST_SHARE_GROUP": "ingest",
                   "PARKWATCH_MQTT_CLIENT_ID": f"bench-ingest-{port}-{i}",
                   "PARKWATCH_METRICS_PORT": str(metrics), "PARKWATCH_LOG_LEVEL": "WARNING",
                   "PARKWATCH_INGEST_BATCH_SIZE": str(load.batch_size)}
            env.pop("PARKWATCH_CONFIG", None)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "parkwatch_cli", "serve", "--role", "ingest"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(metrics)
        # A loaded machine can take seconds to connect; windows sent before a worker
        # subscribed would be dropped (no session yet).
        deadline = time.monotonic() + 120
        while not all(answers_connected(p) for p in metrics_ports):
            if time.monotonic() > deadline:
                raise TimeoutError("an ingest worker never connected to the broker")
            time.sleep(0.1)
        time.sleep(1.0)  # shared subscriptions in place
        ceiling, ceiling_cpu = broker_ceiling(load, tmp)  # the workers are idle
        native = native_ceiling(load, tmp)
        alone = broker_alone(load, tmp)
        payloads = fleet_payloads(load)
        client = publisher(port)
        sender = PublisherCpu(client)
        postgres = engine.dialect.name == "postgresql"
        sampler = WaitSampler(engine) if postgres else None
        if sampler is not None:
            sampler.start()
        writes = [write_seconds(p) for p in metrics_ports]
        skip = 0 if sampler is None else sampler.pid
        before = cpu_now(procs, broker, engine, skip)  # start-up and ceilings are not ingest
        start = time.perf_counter()
        sender.publishing(payloads, client)
        deadline = time.monotonic() + 600
        while stored(engine) < load.windows and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        spent = cpu_spent(before, cpu_now(procs, broker, engine, skip), postgres)
        waits = {} if sampler is None else sampler.stop()
        spent = {"publisher": sender.seconds(), **spent}
        client.disconnect()
        client.loop_stop()
        stats = [worker_stats(p) for p in metrics_ports]
        written = [write_seconds(p) for p in metrics_ports]
        write_s = sum(b[0] - a[0] for a, b in zip(writes, written, strict=True))
        write_n = sum(b[1] - a[1] for a, b in zip(writes, written, strict=True))
        total = stored(engine)
        batched = sum(s[0] for s in stats) / max(sum(s[1] for s in stats), 1.0)
        stop_workers(procs)
        return Case(total / seconds, batched, ceiling, native, alone,
                    {k: v / max(total, 1) for k, v in spent.items()}, ceiling_cpu,
                    write_s / max(write_n, 1.0) * 1e3, waits, hot_updates(engine))
    finally:
        stop_workers(procs)
        broker.terminate()
        broker.wait(10)
        engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--windows", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=100,
                    help="ingest_batch_size of the workers (1: one transaction per window)")
    ap.add_argument("--inflight", type=int, default=100,
                    help="the broker's max_inflight_messages (unacknowledged per client)")
    ap.add_argument("--drift", action="store_true",
                    help="windows with one camera's histograms (about 1 KB) of a registered "
                    "release, so ingest also adds them into the rollups; default: windows "
                    "without cameras (about 250 bytes)")
    ap.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES),
                    help="which configurations to run (default: all)")
    args = ap.parse_args()
    load = Load([f"cam-{i}" for i in range(args.devices)], args.windows, args.batch_size,
                args.inflight, args.drift)
    rows: list[tuple[str, Case]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "sqlite" in args.cases:
            rows.append(("SQLite (WAL), 1 worker",
                         run_case(f"sqlite:///{tmp / 'cp.db'}", 1, load, tmp)))
        for workers in (w for w in (1, 2) if f"pg{w}" in args.cases):
            url = postgres_db()
            if url is not None:
                try:
                    rows.append((f"PostgreSQL, {workers} worker(s)",
                                 run_case(url, workers, load, tmp)))
                finally:
                    drop_postgres_db(url)
    kind = "drift windows, rollups" if args.drift else "windows without cameras"
    print(f"### Fleet ingest ({args.windows} windows from {args.devices} devices, QoS 1, "
          f"ingest_batch_size {args.batch_size}, broker max_inflight_messages "
          f"{args.inflight}, {kind})\n")
    print("| configuration | windows/s | devices at 1 window/min | windows per transaction | "
          "worker CPU per window | PostgreSQL backend CPU per window | "
          "ceilings: paho sub / mosquitto_sub / C pub + sub | "
          "ingest / each ceiling |\n|---|---|---|---|---|---|---|---|")
    for name, c in rows:
        backend = "-" if c.backend_us is None else f"{c.backend_us:,.0f} us"
        print(f"| {name} | {c.rate:,.0f} | {c.rate * 60:,.0f} | {c.batched:.1f} | "
              f"{c.cpu_us:,.0f} us | {backend} | "
              f"{c.ceiling:,.0f} / {c.native:,.0f} / {c.alone:,.0f} | "
              f"{c.rate / c.ceiling:.2f} / {c.rate / c.native:.2f} / "
              f"{c.rate / c.alone:.2f} |")
    print("\nThe ceilings, each measured right before its configuration with the same "
          "payloads: the fleet's (Python) publisher to a paho subscriber that counts and "
          "acknowledges on receipt, the same publisher to mosquitto_sub -q 1 (C, to "
          "/dev/null), and mosquitto_pub -l -q 1 to mosquitto_sub (no Python at either "
          "end).\n")
    for name, c in rows:
        print(f"ratio {name} / broker ceiling: {c.rate / c.ceiling:.2f} (paho subscriber), "
              f"{c.rate / c.native:.2f} (mosquitto_sub), {c.rate / c.alone:.2f} (C at both "
              "ends); goal for PostgreSQL, 2 workers: 0.7")
    print_cpu(rows)
    print_waits(rows)
    loadavg = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nmachine: {os.cpu_count()} logical CPUs (load {loadavg}), Python "
          f"{platform.python_version()}; broker, workers and fleet share this machine")


def print_cpu(rows: list[tuple[str, Case]]) -> None:
    """Where a window's CPU went, every process of the run, and the cores that makes at
    the goal's rate: what the rate can be on a machine with that many cores to spare."""
    print(f"\n#### CPU per window stored, by process (/proc, while ingesting)\n\n"
          "| configuration | publisher | broker | workers | PostgreSQL backends | all | "
          f"cores at {GOAL_RATE:,} windows/s | at the paho ceiling, per message: publisher "
          "/ broker / subscriber |\n|---|---:|---:|---:|---:|---:|---:|---|")
    for name, c in rows:
        us = {k: v * 1e6 for k, v in c.cpu.items()}
        workers = " + ".join(f"{v:,.0f}" for k, v in us.items() if k.startswith("worker"))
        backends = us.get("PostgreSQL backends")
        total = sum(us.values())
        at = c.ceiling_cpu
        print(f"| {name} | {us['publisher']:,.0f} us | {us['broker']:,.0f} us | "
              f"{workers} us | {'-' if backends is None else f'{backends:,.0f} us'} | "
              f"{total:,.0f} us | {total * GOAL_RATE / 1e6:.2f} | "
              f"{at['publisher'] * 1e6:,.0f} / {at['broker'] * 1e6:,.0f} / "
              f"{at['subscriber'] * 1e6:,.0f} us |")
    print("\nPostgreSQL's shared processes (WAL writer, checkpointer) serve every database "
          "on the server and are not counted; /proc counts in 10 ms ticks.")


def print_waits(rows: list[tuple[str, Case]]) -> None:
    """Where the workers' time went besides CPU: a rate below what the CPU allows is
    latency (the commit's WAL flush, row locks another worker holds until its commit)."""
    print("\n#### Besides CPU: a write transaction's wall time, what the backends waited on\n\n"
          "| configuration | write transaction (wall, mean) | its windows' CPU (workers' and "
          "backends' per window x windows per transaction) | active backends' samples: running / "
          "waiting, by event type | HOT updates: telemetry_rollup / device |\n"
          "|---|---:|---:|---|---|")
    for name, c in rows:
        backends = c.backend_us or 0.0
        cpu_ms = (c.cpu_us + backends) * c.batched / 1e3
        waits = ", ".join(f"{k} {v:.0%}" for k, v in c.waits.items()) or "-"
        hot = " / ".join(f"{c.hot[t]:.0%}" if t in c.hot else "-"
                         for t in ("telemetry_rollup", "device")) if c.hot else "-"
        print(f"| {name} | {c.write_ms:.1f} ms | {cpu_ms:.1f} ms | {waits} | {hot} |")
    print("\nA HOT update adds no index entries; PostgreSQL makes one only where the page has "
          "room, which pruning makes only when no transaction anywhere on the server is older "
          "than the dead row versions (autovacuum is off on this machine's server).")


if __name__ == "__main__":
    main()
