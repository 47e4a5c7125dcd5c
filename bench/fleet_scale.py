"""A fleet at scale: N simulated devices for a simulated hour while a rollout runs.

Real processes on this machine: a private Mosquitto, PostgreSQL, `parkwatch serve --role
api` (HTTP API and rollout engine) and ``--workers`` `parkwatch serve --role ingest` in a
shared subscription. N simulated agents (``scripts/fleet_agents.py``: one MQTT connection
each, one selector thread) send one telemetry window per simulated minute, compressed so
that the simulated hour takes ``--seconds`` real seconds. A third of the way in, one
rollout of a new release to every device (one wave, acknowledgement-only gates, as
``bench/rollout_fleet.py``). All the while a reader loads the dashboard's fleet page the
way ``control_plane/web/views_fleet.js`` does (the same API calls, in the same order and
parallelism) and times each load.

    python bench/fleet_scale.py [--devices 1000] [--live N] [--seconds 300] [--workers 2]
                                [--pages new calls old]

Reports: ingest lag p50/p99 (the ingest's ``received_at`` minus the window's end, which
the simulator sets when it publishes; one clock), the rollout's completion time, the
database size per device-day (pg_total_relation_size of the telemetry tables over the
device-days they hold at one window a minute) and the fleet page's p50/p95 load time
(``--pages new calls old``: today's page, the one before ``GET /fleet/page`` and the one
before ``GET /fleet``, loaded in turn).
Needs PostgreSQL at PARKWATCH_TEST_POSTGRES_URL (default the local `test` database).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import _fleet_rig  # noqa: E402 - bench/ helpers: PostgreSQL database, broker, metrics
import httpx  # noqa: E402
import numpy as np  # noqa: E402
import rollout_fleet  # noqa: E402 - the rollout's release and body
import sqlalchemy as sa  # noqa: E402

from control_plane.store.db import create_db_engine, upgrade  # noqa: E402
from scripts.fleet_agents import Fleet, ManifestCache  # noqa: E402
from scripts.fleet_shards import ShardedFleet  # noqa: E402
from scripts.fleet_synth import SimConfig, device_ids  # noqa: E402
from scripts.loop import Loop, wait_until  # noqa: E402

# One window per device per simulated minute.
TELEMETRY_TABLES = ("telemetry_window", "telemetry_watermark", "telemetry_rollup")


@dataclass
class PageTimes:
    """Load times of the fleet page and of each of its API calls, seconds."""

    pages: dict[str, list[float]] = field(default_factory=dict)
    calls: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0

    def add_call(self, name: str, seconds: float) -> None:
        self.calls.setdefault(name, []).append(seconds)


# What views_fleet.js ``fleetView`` asks for at once (Promise.all): (path, query, most
# items), most None for one plain GET; a list pages 1,000 at a time as api.js ``list``.
# "calls": the page before GET /fleet/page (four calls, each authenticated on its own).
# "old": the page before GET /fleet (every device and 1,000 windows to the browser).
FLEET_PAGES: dict[str, list[tuple[str, dict[str, Any], int | None]]] = {
    "new": [("/fleet/page", {"windows": 300, "limit": 100}, None)],
    "calls": [("/fleet", {"windows": 300}, None),
              ("/alerts", {"state": "open", "limit": 1}, None),
              ("/devices", {"limit": 100, "offset": 0}, None),
              ("/dead-letters", {"limit": 1}, None)],
    "old": [("/devices", {}, 5000), ("/telemetry", {}, 1000),
            ("/alerts", {"state": "open"}, 1000)],
}


def _get(api: httpx.Client, times: PageTimes, name: str, path: str,
         params: dict[str, Any]) -> Any:
    start = time.perf_counter()
    resp = api.get(f"/api/v1{path}", params=params)
    resp.raise_for_status()
    times.add_call(f"{name}: GET {path}", time.perf_counter() - start)
    return resp.json()


def fleet_page(api: httpx.Client, name: str, times: PageTimes, pool: ThreadPoolExecutor) -> None:
    """One load of page ``name``: its calls in parallel, timed each and as a whole."""

    def call(path: str, params: dict[str, Any], most: int | None) -> None:
        if most is None:
            _get(api, times, name, path, params)
            return
        offset = 0
        while offset < most:
            page = _get(api, times, name, path,
                        {**params, "limit": min(1000, most - offset), "offset": offset})
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    start = time.perf_counter()
    specs = FLEET_PAGES[name]
    try:
        if len(specs) == 1:  # one fetch, as the browser makes it: no hand-off to a thread
            call(*specs[0])
        else:
            for job in [pool.submit(call, *spec) for spec in specs]:
                job.result()
    except httpx.HTTPError:
        times.errors += 1
        return
    times.pages.setdefault(name, []).append(time.perf_counter() - start)


def page_reader(api: httpx.Client, stop: threading.Event, pause: float,
                names: list[str]) -> PageTimes:
    """Load the pages ``names`` in turn (side by side under the same load) until ``stop``."""
    times = PageTimes()
    with ThreadPoolExecutor(max(len(FLEET_PAGES[n]) for n in names)) as pool:
        while not stop.is_set():
            for name in names:
                fleet_page(api, name, times, pool)
            stop.wait(pause)
    return times


def start_processes(loop: Loop, db_url: str, workers: int, tick: float,
                    counts_max_age: float) -> None:
    """`serve --role api` (engine on) and ``workers`` ingest workers, all connected."""
    common = {"PARKWATCH_DATABASE_URL": db_url, "PARKWATCH_LOG_LEVEL": "WARNING"}
    api = loop.spawn("api", "serve", "--role", "api",
                     PARKWATCH_ROLLOUT_TICK_SECONDS=str(tick),
                     PARKWATCH_FLEET_COUNTS_MAX_AGE_SECONDS=str(counts_max_age),
                     # as a large fleet's API would run: a token's row read once in 5 s
                     PARKWATCH_AUTH_CACHE_SECONDS="5", **common)
    wait_until(lambda: api.alive() and httpx.get(f"{loop.api_url}/healthz", timeout=5)
               .status_code == 200, 120, "the API")
    _fleet_rig.spawn_ingest_workers(loop, workers, "scale-ingest", 100, common)
    time.sleep(1.0)  # shared subscriptions in place before the first window


@dataclass
class RolloutTimes:
    post: float = float("nan")  # POST /rollouts answered
    delivered: float = float("nan")  # every device had handled its desired state
    completed: float = float("nan")  # the API says completed


def run_rollout(api: httpx.Client, fleet: Fleet | ShardedFleet, ids: list[str],
                stop: threading.Event) -> RolloutTimes:
    out = RolloutTimes()
    rel = rollout_fleet.release(api)
    before = fleet.stats.desired_handled
    start = time.perf_counter()

    def watch() -> None:
        while not stop.is_set() and fleet.stats.desired_handled - before < len(ids):
            time.sleep(0.02)
        out.delivered = time.perf_counter() - start

    threading.Thread(target=watch, daemon=True).start()
    resp = api.post("/api/v1/rollouts", json={
        "release_id": rel, "devices": ids, "waves": ["100%"],
        "max_devices_per_minute": 1_000_000, "gates": {"min_windows": 0}})
    resp.raise_for_status()
    out.post = time.perf_counter() - start
    rollout_id = resp.json()["rollout_id"]

    def completed() -> bool:  # counts by state, no device listed (as the dashboard polls)
        return bool(api.get(f"/api/v1/rollouts/{rollout_id}", params={"device_limit": 0})
                    .json()["state"] == "completed")

    wait_until(completed, 900, f"the rollout to {len(ids)} devices",
               interval=max(0.1, len(ids) / 5000))
    out.completed = time.perf_counter() - start
    return out


def lag_and_size(engine: sa.Engine, since: float) -> dict[str, float]:
    """Ingest lag quantiles of the windows published after ``since`` (epoch s) and the
    telemetry tables' size per device-day."""
    with engine.connect() as conn:
        p50, p99, n = conn.execute(sa.text(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), count(*) FROM "
            "(SELECT extract(epoch FROM received_at - window_end) AS lag FROM telemetry_window"
            " WHERE window_end >= to_timestamp(:since)) AS w"), {"since": since}).one()
        stored = conn.execute(sa.text("SELECT count(*) FROM telemetry_window")).scalar_one()
        size = sum(conn.execute(sa.text("SELECT pg_total_relation_size(:t)"), {"t": t})
                   .scalar_one() for t in TELEMETRY_TABLES)
    device_days = stored / (24 * 60)  # one window a minute
    return {"lag_p50": float(p50 or 0), "lag_p99": float(p99 or 0), "lagged": float(n),
            "stored": float(stored), "bytes": float(size),
            "per_device_day": size / device_days if device_days else float("nan")}


def drain(engine: sa.Engine, fleet: Fleet | ShardedFleet, timeout: float) -> None:
    """Wait until ingest stored what the broker acknowledged to the fleet (QoS 1)."""
    def caught_up() -> bool:
        return _fleet_rig.stored(engine) >= fleet.stats.windows_acked

    wait_until(caught_up, timeout, "ingest to store every acknowledged window", interval=1)


def measure(args: argparse.Namespace, loop: Loop, db_url: str) -> dict[str, Any]:
    n = args.live or args.devices  # the simulated agents: the first n devices of the store
    config = SimConfig(devices=n, prefix=f"s{args.devices}",
                       interval=args.seconds / args.minutes, windows=0, seed=1)
    engine = create_db_engine(db_url)
    upgrade(db_url)
    _fleet_rig.add_devices(engine, dataclasses.replace(config, devices=args.devices))
    start_processes(loop, db_url, args.workers, args.tick, args.fleet_counts_max_age)
    token = (loop.cp_dir / "admin.token").read_text().strip()
    api = httpx.Client(base_url=loop.api_url, timeout=120,
                       headers={"Authorization": f"Bearer {token}"})
    fleet: Fleet | ShardedFleet = (
        Fleet(config, loop.broker_url, ManifestCache(api)) if args.processes == 1
        else ShardedFleet(config, loop.broker_url, args.processes, loop.api_url, token))
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: api.get("/api/v1/devices", params={"online": "true", "limit": 1})
                   .json()["total"] >= n, 120 + n / 20, f"{n} devices online", interval=1)
        began = time.time()
        api_cpu = _fleet_rig.process_cpu(loop.procs["api"].popen.pid)
        reader_stop = threading.Event()
        reader = _thread(lambda: page_reader(api, reader_stop, args.page_pause, args.pages))
        time.sleep(args.seconds / 3)
        rollout = run_rollout(api, fleet, device_ids(config.prefix, n), stop)
        time.sleep(max(0.0, began + args.seconds - time.time()))
        reader_stop.set()
        pages: PageTimes = reader()
        api_cpu = _fleet_rig.process_cpu(loop.procs["api"].popen.pid) - api_cpu
    finally:
        stop.set()
        runner.join(60)
    sent = (fleet.stats.windows_sent, fleet.stats.windows_acked)
    drain(engine, fleet, 300)
    figures = lag_and_size(engine, began)
    api.close()
    engine.dispose()
    return {"devices": args.devices, "live": n, "rollout": rollout, "pages": pages,
            "sent": sent, "api_cpu": api_cpu, **figures}


def _thread(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``fn`` in a thread; the returned callable joins it and gives its result."""
    box: list[Any] = []
    worker = threading.Thread(target=lambda: box.append(fn()), daemon=True)
    worker.start()

    def join() -> Any:
        worker.join()
        return box[0]

    return join


def q(values: list[float], quantile: float) -> float:
    return float(np.quantile(values, quantile)) * 1000 if values else float("nan")


def report(r: dict[str, Any], args: argparse.Namespace, commit: str) -> None:
    ro: RolloutTimes = r["rollout"]
    pages: PageTimes = r["pages"]
    n = r["live"]
    print(f"### Fleet at scale: {r['devices']:,} devices ({n:,} simulated live), "
          f"{args.minutes:g} simulated minutes in {args.seconds:g} s, {args.workers} ingest "
          f"workers, {args.processes} simulator process(es), PostgreSQL (commit {commit})\n")
    print("| figure | value | goal |\n|---|---:|---|")
    print(f"| windows sent / acknowledged by the broker / stored | {r['sent'][0]:,} / "
          f"{r['sent'][1]:,} / {r['stored']:,.0f} | every acknowledged one stored |")
    print(f"| telemetry rate offered | {n / (args.seconds / args.minutes):,.0f} windows/s | - |")
    print(f"| ingest lag p50 / p99 (s) | {r['lag_p50']:.2f} / {r['lag_p99']:.2f} | - |")
    print(f"| rollout: POST answered (s) | {ro.post:.1f} | - |")
    print(f"| rollout: every live device had it (s) | {ro.delivered:.1f} | - |")
    print(f"| rollout: complete in the API (s) | {ro.completed:.1f} | <= 15 at 10,000 |")
    print(f"| telemetry tables | {r['bytes'] / 2**20:,.1f} MiB | - |")
    print(f"| database per device-day (1 window/min) | {r['per_device_day'] / 2**20:.2f} MiB"
          " | - |")
    print(f"| fleet page loads failed | {pages.errors} | 0 |")
    for name, loads in pages.pages.items():
        print(f"| fleet page ({name}) p50 / p95 (ms, {len(loads)} loads) | "
              f"{q(loads, 0.5):,.0f} / {q(loads, 0.95):,.0f} | p95 < 300 at 10,000 |")
    for name, values in sorted(pages.calls.items()):
        print(f"| {name} p50 / p95 (ms, {len(values)} calls) | {q(values, 0.5):,.0f} / "
              f"{q(values, 0.95):,.0f} | - |")
    print(f"| API process CPU while the page was read (s) | {r['api_cpu']:.1f} | - |")
    for other in ("calls", "old"):
        if pages.pages.get("new") and pages.pages.get(other):
            new, was = pages.pages["new"], pages.pages[other]
            print(f"\nratio fleet page new / {other} (same run): p50 "
                  f"{q(new, 0.5) / q(was, 0.5):.2f}, p95 {q(new, 0.95) / q(was, 0.95):.2f}")
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} logical CPUs (load {load} at "
          f"the end), Python {platform.python_version()}; broker, PostgreSQL, API, workers "
          "and fleet share this machine")


def run(args: argparse.Namespace, tmp: Path, db_url: str) -> dict[str, Any]:
    # The broker's in-flight limit matches the workers' batch: a batch waits for no one.
    port, broker = _fleet_rig.start_broker(tmp, inflight=100)
    loop = Loop(tmp / "loop", mqtt_url=f"mqtt://127.0.0.1:{port}")
    try:
        return measure(args, loop, db_url)
    except Exception:
        for proc in loop.procs.values():
            print(f"--- {proc.name}\n{proc.tail()}", file=sys.stderr)
        raise
    finally:
        # Cleaning up: a second Ctrl-C must not leave processes or the database behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        loop.stop_all()
        broker.terminate()
        broker.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=300.0,
                    help="real seconds the simulated minutes take (one window per device "
                    "and simulated minute)")
    ap.add_argument("--minutes", type=float, default=60.0,
                    help="simulated minutes (default an hour)")
    ap.add_argument("--processes", type=int, default=1,
                    help="simulator processes sharing the live devices (one Python thread "
                    "keeps about 8,000 clients alive on a loaded 2-core machine)")
    ap.add_argument("--live", type=int, default=0,
                    help="simulate only the first LIVE devices (0: all); the others stay "
                    "in the store, offline, for the fleet page to count and list")
    ap.add_argument("--workers", type=int, default=2, help="ingest workers")
    ap.add_argument("--tick", type=float, default=0.5, help="rollout engine tick, seconds")
    ap.add_argument("--fleet-counts-max-age", type=float, default=5.0,
                    help="the API's fleet_counts_max_age_seconds (0: GET /fleet counts the "
                    "device table at every request, as before the figures were kept)")
    ap.add_argument("--page-pause", type=float, default=1.0,
                    help="seconds between two loads of the fleet page")
    ap.add_argument("--pages", nargs="+", choices=sorted(FLEET_PAGES), default=["new"],
                    help="fleet page versions to load in turn (calls: before GET /fleet/page, four "
                    "calls; old: before GET /fleet)")
    args = ap.parse_args()
    db_url = _fleet_rig.postgres_db()
    if db_url is None:
        raise SystemExit("this benchmark needs PostgreSQL: set PARKWATCH_TEST_POSTGRES_URL")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH.parent,
                            capture_output=True, text=True).stdout.strip()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            result = run(args, Path(tmp_name), db_url)
    except KeyboardInterrupt:
        raise SystemExit("interrupted: processes stopped, the benchmark's database dropped; "
                         "nothing measured") from None
    finally:
        _fleet_rig.drop_postgres_db(db_url)
    report(result, args, commit)


if __name__ == "__main__":
    main()
