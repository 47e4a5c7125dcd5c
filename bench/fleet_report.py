"""Fleet drift report time and peak memory: rollups + the raw edges vs every raw window.

    python bench/fleet_report.py [--devices 1000] [--hours 24] [--big-devices 10000 --big-days 7]

Case 1, DEVICES x HOURS of 1-minute windows of one release (one camera per device),
written as ``bench/ingest_drift.py`` seeds them: plain multi-row INSERTs plus ingest's
own rollup code (``telemetry_rollups.add``) in the same transaction, each window
received as it ends. Then ``drift.analyser.run_analysis`` over the whole range, ending
one minute into a new hour (device reports with K-of-N verdicts, the fleet report,
alerts), timed on the same data, each in a fresh process (peak RSS is that process's):
"merge" is ``collect.collect`` alone (reading and merging: what rollups change),
"analysis" all of ``run_analysis`` (plus per-device statistics and report writes):

- rollups: what the analysis does now (whole hours and days from ``telemetry_rollup``,
  the partial hour from its row, each device's latest windows raw);
- raw: the same analysis with every window of the range read and parsed (the fast raw
  path the analysis took before rollups: ``collect.plan`` forced to raw);
- straightforward: ``drift.oracle.reports`` (every window through the ORM's types).

Case 2, BIG_DEVICES x BIG_DAYS: far too many windows to write (100 M at 10,000 x 7 d),
so the rollup rows are generated directly (one device row and one camera row per hour
and per day, each the sum of 60 real windows' vectors), and only the last 20 minutes
are written as raw windows through the same insert and rollup code. Only the rollup
path is timed (the raw path would read every window: see case 1's rate).

Every device has a production baseline for its camera (learned once from the pool's
windows by ``drift.baseline.learn`` and stored for each device, as the analysis keeps
them), so each report judges every camera's latest windows against its baseline as in
a fleet that has learned them (``--no-baselines``: none, every camera still learning).

With ``--before DIR`` (a checkout of other code, e.g. ``git archive COMMIT | tar -x -C
DIR``), each case's whole analysis is also timed by that code's ``control_plane`` (through
this driver) on the same store, alternately with this one's, ``--repeat`` times each, and
the ratio of the best of each printed: a change measured side by side on the same data
and load. ``--warm`` also times a second analysis in the same process, as the server's
periodic task runs them (what a process keeps between analyses counts there).

``--keep DIR`` keeps case 2's store under DIR and reuses it on the next run with the
same sizes (generating 10,000 x 7 days takes minutes), migrated to the code's revision.
``--phases`` also prints one analysis's process CPU per phase (its main calls, wrapped).

Also the camera history a dashboard page loads (``GET /api/v1/drift/history``, 30 days
of one camera's daily rows) over case 2's store, through the API in-process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

# The code measured: this checkout's, or another's (``--before``: ``timed_by`` runs this
# driver over that checkout's ``control_plane``, so both are measured the same way).
sys.path.insert(0, os.environ.get("FLEET_REPORT_CODE") or str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import sqlalchemy as sa
from _fleet_rig import drop_postgres_db, postgres_db
from ingest_drift import POOL, RELEASE, START, insert_windows, pool, prepare, seed
from sqlmodel import Session

from control_plane.config.drift import DriftSettings
from control_plane.drift import baseline, oracle, synthetic
from control_plane.drift import collect as collect_mod
from control_plane.drift.analyser import run_analysis
from control_plane.drift.summary import Summary
from control_plane.services import telemetry_rollups as rollups
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import DriftBaseline, TelemetryRollup

ROWS_PER_INSERT = 20_000


def _report(url: str, how: str, part: str, minutes: int, devices: int, runs: int = 1
            ) -> tuple[float, float, float]:
    """(seconds, peak RSS MB, CPU seconds) of one report in this (fresh) process: ``part``
    "merge" (``collect.collect``: reading and merging) or "analysis" (all of
    ``run_analysis``); with ``runs`` 2, of the second of two in the process. CPU seconds
    are this process's (not the database server's): on a loaded machine the wall clock is
    mostly waiting for a core."""
    for _ in range(runs - 1):
        _report_once(url, how, part, minutes, devices)
    took, cpu = _report_once(url, how, part, minutes, devices)
    return took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, cpu


def _report_once(url: str, how: str, part: str, minutes: int, devices: int
                 ) -> tuple[float, float]:
    engine = create_db_engine(url)
    week = 7 * 24 * 60  # the longest range a report covers
    settings = DriftSettings(range_minutes=min(minutes, week), analysis_interval_s=0)
    now = START + timedelta(minutes=minutes + 1)
    if how == "raw":  # every window of the range, as the analysis read them before rollups
        collect_mod.plan = lambda session, start, end: collect_mod._Plan([(start, end)], [])
    t0, c0 = time.perf_counter(), time.process_time()
    with Session(engine, expire_on_commit=False) as s:
        if how == "straightforward":
            n = len(oracle.reports(s, settings, now=now)) - 1
        elif part == "merge":
            start = collect_mod.report_start(now, settings.range_minutes)
            n = len(collect_mod.collect(s, start, now, None, settings.alert_windows)
                    .devices[RELEASE])
        else:
            n = run_analysis(s, settings, now=now).device_reports
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert n == devices, (how, n, devices)
    engine.dispose()
    return took, cpu


# The analysis's calls that ``--phases`` times, none inside another: (module, name).
PHASES = [("analyser", "collect"), ("analyser", "slice_ids"), ("analyser", "read_recent"),
          ("learning", "active"), ("learning", "learn_missing"), ("hour_history", "load"),
          ("analyser", "compare_many"), ("analyser", "camera_rows"),
          ("analyser", "windows_drifted"), ("analyser", "baseline_holds_many"),
          ("alerts", "record_drift_reports")]


def _phases(url: str, minutes: int, devices: int) -> dict[str, float]:
    """Process CPU seconds of one analysis (in this fresh process) per call of ``PHASES``,
    its total and the rest; each call wrapped where the analysis looks it up."""
    from control_plane.drift import analyser, hour_history, learning
    from control_plane.services import alerts

    modules = {"analyser": analyser, "learning": learning, "hour_history": hour_history,
               "alerts": alerts}
    spent: dict[str, float] = {name: 0.0 for _, name in PHASES}

    def wrapped(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - c0
        return call

    for module, name in PHASES:
        setattr(modules[module], name, wrapped(name, getattr(modules[module], name)))
    _, cpu = _report_once(url, "rollups", "analysis", minutes, devices)
    return {**spent, "rest": cpu - sum(spent.values()), "total": cpu}


def phases(url: str, minutes: int, devices: int) -> dict[str, float]:
    with mp.get_context("spawn").Pool(1) as p:
        return p.apply(_phases, (url, minutes, devices))


def timed(url: str, how: str, part: str, minutes: int, devices: int, runs: int = 1
          ) -> tuple[float, float, float]:
    with mp.get_context("spawn").Pool(1) as p:
        return p.apply(_report, (url, how, part, minutes, devices, runs))


def timed_by(tree: Path, url: str, part: str, minutes: int, devices: int, runs: int = 1
             ) -> tuple[float, float, float]:
    """``timed`` of the rollups path by the ``control_plane`` of another checkout
    (``--before``) through this driver, on the same store, in a fresh process."""
    code = ("import json, sys; import numpy as np; np.seterr(all='ignore'); "
            f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            "import fleet_report as f; "
            f"print(json.dumps(f._report({url!r}, 'rollups', {part!r}, {minutes}, {devices}, "
            f"{runs})))")
    env = {**os.environ, "PYTHONPATH": str(tree), "FLEET_REPORT_CODE": str(tree)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True,
                         text=True, check=True, env=env)
    took, rss, cpu = json.loads(out.stdout.strip().splitlines()[-1])
    return float(took), float(rss), float(cpu)


def before_after(name: str, label: str, url: str, args: argparse.Namespace, minutes: int,
                 devices: int) -> None:
    """The analysis by ``--before``'s code and by this one, alternately, ``--repeat``
    times each on the same store (with ``--warm``, also the second analysis in a
    process); the ratio of the best of each (wall and CPU)."""
    for runs in (1, 2) if args.warm else (1,):
        part = "analysis" if runs == 1 else "second analysis"
        got: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
        for _ in range(args.repeat):
            for who in got:
                took, rss, cpu = (
                    timed_by(args.before, url, "analysis", minutes, devices, runs)
                    if who == "before" else
                    timed(url, "rollups", "analysis", minutes, devices, runs))
                got[who].append((took, cpu))
                print(f"| {name} | {label} | | {part}: {who} | {took:.2f} | {cpu:.2f} | "
                      f"{rss:.0f} | {os.getloadavg()[0]:.1f} |")
        best = {who: [min(t[i] for t in got[who]) for i in (0, 1)] for who in got}
        print(f"| {name} | {label} | | {part}: before / now (best of {args.repeat}) | "
              f"{best['before'][0] / best['now'][0]:.2f}x | "
              f"{best['before'][1] / best['now'][1]:.2f}x | | |")


def _hour_vector() -> list[float]:
    """One device-hour: the flat vector of 60 of the pool's windows."""
    s = Summary.empty(synthetic.profile())
    for i, w in enumerate(pool() * 2):
        if i < 60:
            s.add_window(w.model_dump(mode="json", by_alias=True))
    vector: list[float] = s.flush().tolist()
    return vector


def add_baselines(url: str, devices: int) -> None:
    """One active baseline per device for its camera, learned from the pool's windows."""
    profile = synthetic.profile()
    cameras = [{**c, "window_minutes": 1.0} for w in pool() * 4
               for c in w.model_dump(mode="json", by_alias=True)["cameras"]]
    fit = baseline.learn(profile, cameras, min_samples=DriftSettings().min_samples, block=4,
                         recent=DriftSettings().alert_windows)
    assert fit is not None
    key = baseline.camera_key(cameras[0])
    rows = [{"device_id": f"cam-{d}", "camera_id": key[0], "condition": key[1],
             "release_id": RELEASE, "window_count": fit.windows, "sample_count": fit.frames,
             "window_minutes": fit.window_minutes, "counts": fit.counts,
             "levels": baseline.fit_json(fit), "learned_from": START, "learned_to": START,
             "created_at": START} for d in range(devices)]
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        for i in range(0, len(rows), ROWS_PER_INSERT):
            s.execute(sa.insert(DriftBaseline), rows[i : i + ROWS_PER_INSERT])
    engine.dispose()


def _same(value: Any) -> Any:
    return value


def _generate_rollups(engine: sa.Engine, devices: int, days: int) -> None:
    """One device row and one camera row per device and hour, and per device and day, all
    holding the same vector. Written as ingest writes them, hour after hour (the table's
    key order), through the driver with each value converted once by its column's type:
    3.5 M rows of 1.3 KB at 10,000 x 7 days, which device by device through SQLAlchemy's
    per-row JSON took 25 to 80 minutes on the shared machine. The secondary indexes are
    dropped for the load and built after it, sorted, as a bulk load does."""
    table: sa.Table = TelemetryRollup.__table__  # type: ignore[attr-defined]
    dialect = engine.dialect
    hour = _hour_vector()
    counts_of = table.c.counts.type.dialect_impl(dialect).bind_processor(dialect) or _same
    counts = {"hour": counts_of(hour), "day": counts_of([24 * v for v in hour])}
    time_of = table.c.bucket.type.dialect_impl(dialect).bind_processor(dialect) or _same
    names = ["grain", "bucket", "device_id", "release_id", "camera_id", "condition", "windows",
             "mismatched", "first_start", "last_end", "counts", "folded"]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) "
           f"VALUES ({', '.join([mark] * len(names))})")
    ids = sorted(f"cam-{d}" for d in range(devices))  # the key's order
    pairs = sorted([(rollups.DEVICE, rollups.DEVICE), ("gate", "day")])
    with engine.begin() as conn:
        for ix in table.indexes:
            ix.drop(conn)
    rows: list[tuple[Any, ...]] = []
    for grain, size, n in sorted([("hour", rollups.HOUR, days * 24), ("day", rollups.DAY, days)]):
        for i in range(n):
            b = START + i * size
            first, last = time_of(b), time_of(b + size)
            rows += [(grain, first, device_id, RELEASE, camera, condition,
                      60 * size // rollups.HOUR, 0, first, last, counts[grain], True)
                     for device_id in ids for camera, condition in pairs]
            if len(rows) >= ROWS_PER_INSERT or i == n - 1:
                with engine.begin() as conn:
                    conn.exec_driver_sql(sql, rows)
                rows.clear()
    with engine.begin() as conn:
        for ix in table.indexes:
            ix.create(conn)


def generate(url: str, devices: int, days: int) -> int:
    """Rollup rows for DEVICES x DAYS, then 20 minutes of raw windows through ingest's
    insert and rollup code; returns the minutes the range covers."""
    prepare(url, devices)
    engine = create_db_engine(url)
    _generate_rollups(engine, devices, days)
    minutes = days * 24 * 60
    base = [w.model_dump(mode="json", by_alias=True) for w in pool()]
    for d0 in range(0, devices, 1000):
        raw = []
        for d in range(d0, min(devices, d0 + 1000)):
            for q in range(minutes, minutes + 20):
                start, end = START + timedelta(minutes=q), START + timedelta(minutes=q + 1)
                raw.append({"device_id": f"cam-{d}", "seq": q, "window_start": start,
                            "window_end": end, "release_id": RELEASE, "received_at": end,
                            "payload": {**base[(d + q) % POOL], "device_id": f"cam-{d}",
                                        "seq": q}})
        with session_scope(engine) as s:
            insert_windows(s, raw)
    engine.dispose()
    return _minutes(days)


def _minutes(days: int) -> int:
    """The range of case 2's report: it ends one minute before the last raw window, so
    the partial hour is raw."""
    return days * 24 * 60 + 19


def kept_store(keep: Path, name: str, args: argparse.Namespace) -> tuple[str, Path, bool]:
    """Case 2's store kept under ``keep`` (``--keep``): its URL, the file that marks it
    complete (holding the URL), and whether an earlier run completed it (generated it and
    its baselines), so this one reuses it."""
    keep.mkdir(parents=True, exist_ok=True)
    stem = keep / (f"{name.lower()}-{args.big_devices}x{args.big_days}d"
                   + ("-no-baselines" if args.no_baselines else ""))
    done = stem.with_suffix(".done")
    if done.exists():
        return done.read_text().strip(), done, True
    if name == "SQLite":
        stem.with_suffix(".db").unlink(missing_ok=True)
        return f"sqlite:///{stem}.db", done, False
    return postgres_db() or "", done, False


def _admin_token(url: str, path: Path) -> str:
    """The admin token the app wrote on its first start over this store, or, over a store
    kept from an earlier run (``--keep``: the app found its token there and wrote none),
    a new one."""
    if path.exists():
        return path.read_text().strip()
    from control_plane.services.auth import create_token

    engine = create_db_engine(url)
    with session_scope(engine) as s:
        _, secret = create_token(s, "fleet-report-bench", ["admin"], who="bench")
    engine.dispose()
    return secret


def history(url: str, until: str) -> tuple[float, int]:
    """(seconds, points) of the camera history route for one camera, 30 days (the
    request through the API in-process, after a warm-up request)."""
    from fastapi.testclient import TestClient

    from control_plane.api import create_app
    from control_plane.config import ControlPlaneSettings

    settings = ControlPlaneSettings(data_dir=Path(tempfile.mkdtemp()), database_url=url)
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {_admin_token(url, settings.admin_token_path)}"}
        params: dict[str, Any] = {"device_id": "cam-7", "camera_id": "gate", "days": 30,
                                  "until": until}
        client.get("/api/v1/drift/history", params={**params, "device_id": "cam-8"}, headers=h)
        t0 = time.perf_counter()
        r = client.get("/api/v1/drift/history", params=params, headers=h)
        took = time.perf_counter() - t0
    r.raise_for_status()
    return took, len(r.json()["points"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=100, help="0: skip case 1")
    ap.add_argument("--hours", type=int, default=2)
    ap.add_argument("--big-devices", type=int, default=0, help="0: skip case 2")
    ap.add_argument("--big-days", type=int, default=7)
    ap.add_argument("--no-straightforward", action="store_true")
    ap.add_argument("--big-merge-only", action="store_true",
                    help="Case 2: time the merge only, not the whole analysis.")
    ap.add_argument("--sqlite-only", action="store_true")
    ap.add_argument("--no-baselines", action="store_true",
                    help="No production baselines: every camera still learning.")
    ap.add_argument("--before", type=Path, default=None,
                    help="A checkout of other (older) code: its analysis is timed on the same "
                    "stores beside this one's, alternately (e.g. a `git worktree add` of the "
                    "commit before a change).")
    ap.add_argument("--repeat", type=int, default=2, help="Timings each with --before.")
    ap.add_argument("--warm", action="store_true",
                    help="With --before: also time a second analysis in the same process.")
    ap.add_argument("--phases", action="store_true",
                    help="Case 2: also one analysis's process CPU per phase (its main calls).")
    ap.add_argument("--keep", type=Path, default=None,
                    help="Keep case 2's store in this folder and reuse it when it is there.")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}, Python {platform.python_version()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        urls: dict[str, Callable[[], str]] = {
            "SQLite": lambda: f"sqlite:///{Path(tmp) / uuid.uuid4().hex}.db"}
        if not args.sqlite_only and postgres_db() is not None:
            urls["PostgreSQL"] = lambda: postgres_db() or ""
        print("| store | case | windows | path | report s | CPU s | peak RSS MB | load |\n"
              "|---|---|---|---|---|---|---|---|")
        for name, new_url in urls.items():
            url = new_url() if args.devices else ""
            try:
                if args.devices:
                    case_one(name, url, args)
                if args.big_devices:
                    case_two(name, new_url, args)
            finally:
                if name == "PostgreSQL" and url:
                    drop_postgres_db(url)


def case_one(name: str, url: str, args: argparse.Namespace) -> None:
    prepare(url, args.devices)
    minutes = args.hours * 60
    t0 = time.perf_counter()
    seed(url, args.devices, minutes)
    if not args.no_baselines:
        add_baselines(url, args.devices)
    seeded = time.perf_counter() - t0
    n = args.devices * minutes
    label = f"{args.devices:,} x {args.hours} h"
    got: dict[tuple[str, str], float] = {}
    ways = [("merge", "rollups"), ("merge", "raw"), ("analysis", "rollups"),
            ("analysis", "raw")]
    if not args.no_straightforward:
        ways.append(("analysis", "straightforward"))
    for part, how in ways:
        took, rss, cpu = timed(url, how, part, minutes, args.devices)
        got[(part, how)] = took
        print(f"| {name} | {label} (seeded in {seeded:.0f} s) | {n:,} | {part}: {how} | "
              f"{took:.2f} | {cpu:.2f} | {rss:.0f} | {os.getloadavg()[0]:.1f} |")
    for part in ("merge", "analysis"):
        ratio = got[(part, "raw")] / got[(part, "rollups")]
        print(f"| {name} | {label} | | {part}: raw / rollups | {ratio:.1f}x | | | |")
    if args.before:
        before_after(name, label, url, args, minutes, args.devices)


def case_two(name: str, new_url: Any, args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    url, done, reused = (kept_store(args.keep, name, args) if args.keep
                         else (new_url(), None, False))
    minutes = _minutes(args.big_days)
    if reused:
        upgrade(url)  # migrations landed since it was kept
    else:
        generate(url, args.big_devices, args.big_days)
        if not args.no_baselines:
            add_baselines(url, args.big_devices)
        if done is not None:
            done.write_text(url)
    how = "kept from an earlier run" if reused else (
        f"rollup rows generated in {time.perf_counter() - t0:.0f} s")
    label = f"{args.big_devices:,} x {args.big_days} d ({how})"
    n = args.big_devices * args.big_days * 24 * 60
    for part in ("merge",) if args.big_merge_only else ("merge", "analysis"):
        took, rss, cpu = timed(url, "rollups", part, minutes, args.big_devices)
        print(f"| {name} | {label} | {n:,} (as rollups) | {part}: rollups | {took:.2f} "
              f"| {cpu:.2f} | {rss:.0f} | {os.getloadavg()[0]:.1f} |")
    if args.before:
        before_after(name, label, url, args, minutes, args.big_devices)
    if args.phases:
        spent = phases(url, minutes, args.big_devices)
        print(f"| {name} | {label} | | analysis CPU s by phase | "
              + ", ".join(f"{k} {v:.3f}" for k, v in spent.items()) + " | | | "
              f"{os.getloadavg()[0]:.1f} |")
    seconds, points = history(url, (START + timedelta(days=args.big_days)).isoformat())
    print(f"| {name} | one camera, 30 days ({points} daily points) | | "
          f"GET /api/v1/drift/history | {seconds:.3f} | | | {os.getloadavg()[0]:.1f} |")
    if name == "PostgreSQL" and not args.keep:
        drop_postgres_db(url)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
