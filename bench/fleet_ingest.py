"""Fleet ingest capacity: telemetry windows/s stored by `parkwatch serve --role ingest`.

A simulated fleet (one MQTT connection, QoS 1, ``--publisher raw`` or ``paho``) publishes
telemetry windows of many devices to a private Mosquitto; real ingest worker processes
store them (validation, dedup on (device, seq), up to ``--batch-size`` windows per
transaction, PUBACK after the commit). The broker here allows ``--inflight`` (100)
unacknowledged messages in flight per client, so batches hold at most that many
(Mosquitto's default is 20). Configurations:

- SQLite (WAL), 1 worker;
- PostgreSQL, 1 worker and 2 workers in a shared subscription (when a server answers
  at PARKWATCH_TEST_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1/test).

Ingest is reported against the broker alone (``_broker_ceiling.py``): the same publisher
and payloads to a trivial QoS 1 subscriber, the ceiling ingest is reported against: a
paho client that counts and acknowledges on receipt (Python, like the workers),
``mosquitto_sub -q 1`` (C, not bound by Python), and ``mosquitto_pub -l`` to
``mosquitto_sub`` (no Python at either end). A shared machine's pace changes by the
minute, so ceilings and ingest runs alternate, ``--rounds`` times: ceiling, run,
ceiling, run, ..., ceiling; each run is divided by the mean of the ceilings right before
and after it, and the median over rounds is printed with its range and the ceilings' own
max / min (``_ceiling_rounds.py``). ``--configs I/B ...`` alternates broker in-flight
limits / batch sizes within each round (the ceilings at the first one's in-flight limit).

    python bench/fleet_ingest.py [--devices 100] [--windows 1500] [--batch-size 100]
                                 [--inflight 100] [--drift] [--cases sqlite pg1 pg2]
                                 [--rounds 1] [--configs 400/400 100/100]
                                 [--publisher raw|paho]

A device sends one window per minute by default, so windows/s x 60 is the fleet size
one configuration keeps up with (before any headroom). Each run's CPU per window stored
is read from /proc for every process of the run (the publisher, the broker, each worker,
the database's PostgreSQL backends), with the cores that adds up to at 5,000 windows/s;
and each ceiling's per message (publisher, broker, subscriber).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from _broker_ceiling import (  # bench/ is on sys.path: scripts run from it
    PROFILE,
    RELEASE,
    Ceiling,
    Load,
    Payloads,
    fleet_payloads,
    measure_ceiling,
)
from _fleet_publisher import KINDS, open_publisher
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
from _ingest_tables import (
    Case,
    Run,
    print_ceilings,
    print_cpu,
    print_runs,
    print_summary,
    print_waits,
)
from _ingest_waits import WaitSampler, hot_updates, write_seconds

from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import register_profiled_release
from scripts.loop import free_port

ROOT = Path(__file__).resolve().parents[1]

QUEUED = 1_000  # ingest_max_queued's default: raised to the batch where a batch is bigger
CASES = {"sqlite": "SQLite (WAL), 1 worker", "pg1": "PostgreSQL, 1 worker",
         "pg2": "PostgreSQL, 2 workers"}


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


def serving(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Returns once ``proc`` serves its metrics on ``port``; exits with the worker's last
    words if it stopped first (a setting it refused, say), instead of waiting it out."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"an ingest worker exited with code {proc.returncode} before "
                             f"serving its metrics: {last}")
        try:
            wait_port(port, timeout=0.5)
            return
        except SystemExit:
            continue
    raise SystemExit(f"an ingest worker did not serve its metrics on {port} within 180 s")


def start_workers(url: str, workers: int, load: Load, port: int, tmp: Path
                  ) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """``workers`` ingest processes in one shared subscription on the broker at ``port``,
    returned once every one is connected, with their metrics ports."""
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
                   "PARKWATCH_INGEST_BATCH_SIZE": str(load.batch_size),
                   # the queue must hold a batch (a worker refuses to start otherwise)
                   "PARKWATCH_INGEST_MAX_QUEUED": str(max(QUEUED, load.batch_size))}
            env.pop("PARKWATCH_CONFIG", None)
            log = tmp / f"w{port}-{i}.log"
            with log.open("wb") as err:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "parkwatch_cli", "serve", "--role", "ingest"],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err))
            serving(procs[-1], metrics, log)
        # A loaded machine can take seconds to connect; windows sent before a worker
        # subscribed would be dropped (no session yet).
        deadline = time.monotonic() + 120
        while not all(answers_connected(p) for p in metrics_ports):
            if time.monotonic() > deadline:
                raise TimeoutError("an ingest worker never connected to the broker")
            time.sleep(0.1)
    except BaseException:
        stop_workers(procs)
        raise
    time.sleep(1.0)  # shared subscriptions in place
    return procs, metrics_ports


def run_case(url: str, workers: int, load: Load, payloads: Payloads, tmp: Path,
             publisher: str) -> Case:
    """Ingest of ``payloads`` with ``workers`` workers into a fresh store at ``url``."""
    upgrade(url)
    engine = create_db_engine(url)
    with session_scope(engine) as session:
        for device_id in load.devices:
            session.add(Device(device_id=device_id, labels={}))
    if load.drift:
        register_release(engine)
    port, broker = start_broker(tmp, load.inflight)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs, metrics_ports = start_workers(url, workers, load, port, tmp)
        sender = open_publisher(publisher, port, payloads)
        postgres = engine.dialect.name == "postgresql"
        sampler = WaitSampler(engine) if postgres else None
        if sampler is not None:
            sampler.start()
        writes = [write_seconds(p) for p in metrics_ports]
        skip = 0 if sampler is None else sampler.pid
        before = cpu_now(procs, broker, engine, skip)  # start-up is not ingest
        start = time.perf_counter()
        sender.send()
        deadline = time.monotonic() + 600
        while stored(engine) < len(payloads) and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        spent = cpu_spent(before, cpu_now(procs, broker, engine, skip), postgres)
        waits = {} if sampler is None else sampler.stop()
        spent = {"publisher": sender.cpu_seconds(), **spent}
        sender.close()
        stats = [worker_stats(p) for p in metrics_ports]
        written = [write_seconds(p) for p in metrics_ports]
        write_s = sum(b[0] - a[0] for a, b in zip(writes, written, strict=True))
        write_n = sum(b[1] - a[1] for a, b in zip(writes, written, strict=True))
        total = stored(engine)
        batched = sum(s[0] for s in stats) / max(sum(s[1] for s in stats), 1.0)
        stop_workers(procs)
        return Case(total / seconds, batched, {k: v / max(total, 1) for k, v in spent.items()},
                    write_s / max(write_n, 1.0) * 1e3, waits, hot_updates(engine))
    finally:
        stop_workers(procs)
        broker.terminate()
        broker.wait(10)
        engine.dispose()


def run_in_store(case: str, load: Load, payloads: Payloads, tmp: Path, publisher: str
                 ) -> Case | None:
    """``case`` on a fresh store (None: PostgreSQL asked for and no server answers)."""
    if case == "sqlite":
        return run_case(f"sqlite:///{tmp / f'cp-{time.monotonic_ns()}.db'}", 1, load,
                        payloads, tmp, publisher)
    url = postgres_db()
    if url is None:
        return None
    try:
        return run_case(url, int(case[-1]), load, payloads, tmp, publisher)
    finally:
        drop_postgres_db(url)


def parse_config(text: str) -> tuple[int, int]:
    """``I/B``: the broker's in-flight limit and the workers' batch size."""
    try:
        inflight, batch = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not IN-FLIGHT/BATCH, e.g. 400/400") from None
    if inflight < 1 or batch < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: both must be at least 1")
    return inflight, batch


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--windows", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=100,
                    help="ingest_batch_size of the workers (1: one transaction per window)")
    ap.add_argument("--inflight", type=int, default=100,
                    help="the broker's max_inflight_messages (unacknowledged per client)")
    ap.add_argument("--configs", nargs="+", type=parse_config, metavar="I/B",
                    help="alternate these in-flight limits / batch sizes in each round "
                    "(instead of --inflight and --batch-size); the first is the base the "
                    "others are compared with, run for run")
    ap.add_argument("--drift", action="store_true",
                    help="windows with one camera's histograms (about 1 KB) of a registered "
                    "release, so ingest also adds them into the rollups; default: windows "
                    "without cameras (about 250 bytes)")
    ap.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES),
                    help="which configurations to run (default: all)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every configuration this many times, each between two "
                    "measurements of the broker's ceiling")
    ap.add_argument("--publisher", choices=KINDS, default="raw",
                    help="the fleet's publisher, in the ceilings and ingest alike: prebuilt "
                    "packets on a plain socket (default: 2-4 us a message whatever the "
                    "broker's pace, so the ceiling is the broker's and the subscriber's), or "
                    "paho's Client.publish (45-125 us, sharing the paho ceiling's process)")
    return ap.parse_args()


def main() -> None:
    args = arguments()
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    devices = [f"cam-{i}" for i in range(args.devices)]
    loads = [Load(devices, args.windows, batch, inflight, args.drift)
             for inflight, batch in (args.configs or [(args.inflight, args.batch_size)])]
    payloads = fleet_payloads(loads[0])
    runs: list[Run] = []
    ceilings: list[Ceiling] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ceilings.append(measure_ceiling(loads[0], payloads, tmp, args.publisher))
        for round_no in range(1, args.rounds + 1):
            for case in args.cases:
                for load in loads:
                    loadavg = os.getloadavg()[0]
                    result = run_in_store(case, load, payloads, tmp, args.publisher)
                    if result is None:
                        continue
                    runs.append(Run(round_no, CASES[case], load, result, loadavg))
                    ceilings.append(measure_ceiling(loads[0], payloads, tmp,
                                                    args.publisher))
    kind = "drift windows, rollups" if args.drift else "windows without cameras"
    print(f"### Fleet ingest ({args.windows} windows from {args.devices} devices, QoS 1, "
          f"{kind}, {args.rounds} round(s), {args.publisher} publisher)\n")
    print_runs(runs, ceilings)
    print_summary(runs, ceilings)
    print_ceilings(ceilings, loads[0].inflight)
    print_cpu(runs)
    print_waits(runs)
    now = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nmachine: {os.cpu_count()} logical CPUs (load {now}), Python "
          f"{platform.python_version()}; broker, workers and fleet share this machine")


if __name__ == "__main__":
    main()
