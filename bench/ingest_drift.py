"""Telemetry ingest throughput into the store, and the time of a fleet drift report.

    python bench/ingest_drift.py [--windows 2000] [--devices 100] [--hours 2]
    python bench/ingest_drift.py --no-ingest --devices 1000 --hours 24   # the full size

Ingest (windows/s, realistic payloads with every histogram filled, as agents send them),
measured side by side on SQLite (WAL) and PostgreSQL (when a server answers at
PARKWATCH_TEST_POSTGRES_URL), with one and two writer processes:

- per window: ``services.telemetry.ingest_window`` and one commit per window (what the
  MQTT ingest path does);
- batched: ``services.telemetry.ingest_windows``, 500 windows per transaction;
- batched, no rollups: the same with ``telemetry_rollups.add`` switched off (ingest as
  it was before rollups), so the ratio is the rollups' cost.

Drift: ``drift.analyser.run_analysis`` over DEVICES x HOURS of 1-minute windows (one
release): device reports with K-of-N window verdicts, the fleet report and alerts. The
windows are seeded with plain multi-row INSERTs in large transactions (seeding is not
what is measured). Beside it, on the same data, ``drift.oracle.reports``: the
straightforward computation (every window through the ORM's JSON and datetime types,
as the analysis did before its fast path; it writes nothing, so it is favoured a
little; at ``bench/run``'s short size per-device work and report writes dominate and
the ratio says little). Up to 200,000 windows the report is timed again after
retention has merged every window older than one hour into hourly windows (what
``[retention] downsample_after_hours = 1`` would keep); above that it is skipped,
because retention loads every window of its day at once.

The full size (1,000 devices x 24 h = 1.44 M windows) needs about 2 GB of disk per
store in the temporary directory (``TMPDIR``; PostgreSQL: its data directory) and a few
minutes per store; ``bench/run`` uses a short size.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import sqlalchemy as sa
from _fleet_rig import drop_postgres_db, postgres_db  # fresh PostgreSQL databases
from sqlmodel import Session

from control_plane.config.drift import DriftSettings
from control_plane.config.retention import RetentionSettings
from control_plane.drift import oracle, synthetic
from control_plane.drift.analyser import run_analysis
from control_plane.services import telemetry_binning, telemetry_rollups
from control_plane.services.telemetry import ingest_window, ingest_windows
from control_plane.services.telemetry_retention import apply_retention
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device, TelemetryWindowRecord
from control_plane.testing import register_profiled_release
from protocols import TelemetryWindow

START = datetime(2026, 6, 1, tzinfo=UTC)
RELEASE = "petnet-v1-bench"
POOL = 64  # distinct payloads, reused with other device ids, seqs and times
SEED_ROWS = 20_000  # rows per executemany (one transaction each)
MERGED_UP_TO = 200_000  # windows: above this, the hourly-merged report is skipped


def pool() -> list[TelemetryWindow]:
    ref, rng = synthetic.profile(), np.random.default_rng(0)
    return [TelemetryWindow.model_validate(synthetic.window(
        ref, "cam-0", i, rng=rng, release_id=RELEASE, start=START, frames=120))
        for i in range(POOL)]


def make(pooled: list[TelemetryWindow], device: int, seq: int) -> TelemetryWindow:
    start = START + timedelta(minutes=seq)
    return pooled[(device * 7 + seq) % POOL].model_copy(update={
        "device_id": f"cam-{device}", "seq": seq, "window_start": start,
        "window_end": start + timedelta(minutes=1)})


def prepare(url: str, devices: int) -> None:
    upgrade(url)
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        s.add_all(Device(device_id=f"cam-{d}", labels={}) for d in range(devices))
        register_profiled_release(s, RELEASE, synthetic.profile(), created_by="bench")
    engine.dispose()


def _writer(
    url: str, mode: str, device_ids: list[int], per_device: int
) -> tuple[int, float, float]:
    """Write this process's windows; returns (count, start, end) in wall-clock seconds, so
    process start-up and payload building stay out of the measurement."""
    pooled = pool()
    engine = create_db_engine(url)
    if mode.endswith("no rollups"):  # ingest as it was before rollups: the cost they add
        telemetry_rollups.add = lambda *_: 0  # type: ignore[assignment]
    windows = [make(pooled, d, q) for d in device_ids for q in range(per_device)]
    begin = time.time()
    try:
        if mode == "per window":
            for w in windows:
                with session_scope(engine) as s:
                    ingest_window(s, w)
        else:
            for i in range(0, len(windows), 500):
                with session_scope(engine) as s:
                    ingest_windows(s, windows[i : i + 500])
    finally:
        engine.dispose()
    return len(windows), begin, time.time()


def ingest_case(url: str, mode: str, workers: int, windows: int) -> float:
    devices = 20
    prepare(url, devices)
    per_device = windows // devices
    split = [list(range(devices))[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as ex:
        parts = list(ex.map(_writer, [url] * workers, [mode] * workers, split,
                            [per_device] * workers))
    elapsed = max(p[2] for p in parts) - min(p[1] for p in parts)
    return sum(p[0] for p in parts) / elapsed


def insert_windows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Window rows inserted as ingest stores them: binned once on their release's bins
    for their drift columns and the rollups (``telemetry_binning.binned``), then added
    into the rollups in the same transaction."""
    table: sa.Table = TelemetryWindowRecord.__table__  # type: ignore[attr-defined]
    done = telemetry_binning.binned(session, [(r["release_id"], r["payload"]) for r in rows])
    for r, b in zip(rows, done, strict=True):
        r.update(b.columns)
    session.execute(sa.insert(table), rows)
    telemetry_rollups.add(session, rows, [b.flat for b in done])


def seed(url: str, devices: int, minutes: int) -> None:
    """DEVICES x MINUTES windows of one release, as plain multi-row INSERTs (the payloads
    are what ``ingest_windows`` stores: the same JSON, with each row's ids and times),
    each received as it ends, and added into the rollups by ingest's own code
    (``telemetry_rollups.add``) in the same transaction."""
    base = [w.model_dump(mode="json", by_alias=True) for w in pool()]
    engine = create_db_engine(url)
    rows: list[dict[str, Any]] = []

    def write() -> None:
        with session_scope(engine) as s:
            insert_windows(s, rows)
        rows.clear()

    for d in range(devices):
        for q in range(minutes):
            start, end = START + timedelta(minutes=q), START + timedelta(minutes=q + 1)
            payload = {**base[(d * 7 + q) % POOL], "device_id": f"cam-{d}", "seq": q,
                       "window_start": start.isoformat().replace("+00:00", "Z"),
                       "window_end": end.isoformat().replace("+00:00", "Z")}
            rows.append({"device_id": f"cam-{d}", "seq": q, "window_start": start,
                         "window_end": end, "release_id": RELEASE, "received_at": end,
                         "payload": payload})
            if len(rows) == SEED_ROWS:
                write()
    if rows:
        write()
    engine.dispose()


def _settings(minutes: int) -> DriftSettings:
    return DriftSettings(range_minutes=minutes, analysis_interval_s=0)


def _timed_report(engine: Any, minutes: int, devices: int) -> float:
    t0 = time.perf_counter()
    with Session(engine, expire_on_commit=False) as s:
        result = run_analysis(s, _settings(minutes), now=START + timedelta(minutes=minutes + 1))
    assert result.device_reports == devices
    return time.perf_counter() - t0


def _timed_oracle(engine: Any, minutes: int, devices: int) -> float:
    t0 = time.perf_counter()
    with Session(engine, expire_on_commit=False) as s:
        reports = oracle.reports(s, _settings(minutes), now=START + timedelta(minutes=minutes + 1))
    assert len(reports) == devices + 1
    return time.perf_counter() - t0


def drift_case(url: str, devices: int, hours: int) -> dict[str, float | None]:
    """Seconds of: seeding, the report (fast path), the straightforward computation, and
    the report after downsampling everything older than one hour into hourly windows
    (None when skipped)."""
    prepare(url, devices)
    minutes = hours * 60
    t0 = time.perf_counter()
    seed(url, devices, minutes)
    out: dict[str, float | None] = {"seed": time.perf_counter() - t0}
    engine = create_db_engine(url)
    out["report"] = _timed_report(engine, minutes, devices)
    out["oracle"] = _timed_oracle(engine, minutes, devices)
    out["merged"] = None
    if devices * minutes <= MERGED_UP_TO:
        hourly = RetentionSettings(downsample_after_hours=1, bucket_minutes=60,
                                   delete_after_days=3650)
        with Session(engine, expire_on_commit=False) as s:
            apply_retention(s, hourly, START + timedelta(minutes=minutes + 1))
        out["merged"] = _timed_report(engine, minutes, devices)
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=2000, help="Windows per ingest case.")
    ap.add_argument("--devices", type=int, default=100, help="Devices in the drift report.")
    ap.add_argument("--hours", type=int, default=2, help="Hours of 1-minute windows.")
    ap.add_argument("--no-ingest", action="store_true", help="Only the drift report.")
    ap.add_argument("--batched-only", action="store_true",
                    help="Ingest batched only, with and without rollups (no drift report).")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}\n")
    created: list[str] = []

    def new_pg() -> str:
        url = postgres_db() or ""
        created.append(url)
        return url

    with tempfile.TemporaryDirectory() as tmp:
        backends = {"SQLite": lambda: f"sqlite:///{Path(tmp) / uuid.uuid4().hex}.db"}
        probe = postgres_db()
        if probe is not None:
            drop_postgres_db(probe)
            backends["PostgreSQL"] = new_pg
        try:
            report(backends, args)
        finally:
            for url in created:
                drop_postgres_db(url)


def report(backends: dict[str, Callable[[], str]], args: argparse.Namespace) -> None:
    if not args.no_ingest:
        ingest_report(backends, args)
    if args.batched_only:
        return
    print("\n| store | devices x hours | windows | seed s | report s | windows/s | "
          "straightforward s | straightforward / report | report s, hourly-merged after 1 h |"
          "\n|---|---|---|---|---|---|---|---|---|")
    ratios: list[str] = []
    n = args.devices * args.hours * 60
    for name, new_url in backends.items():
        t = drift_case(new_url(), args.devices, args.hours)
        fast, slow, seeded = t["report"] or 0.0, t["oracle"] or 0.0, t["seed"] or 0.0
        merged = "skipped" if t["merged"] is None else f"{t['merged']:.1f}"
        print(f"| {name} | {args.devices:,} x {args.hours} | {n:,} | {seeded:.0f} | "
              f"{fast:.1f} | {n / fast:,.0f} | {slow:.1f} | {slow / fast:.2f}x | {merged} |")
        ratios.append(f"{name} fleet report {args.devices:,} x {args.hours} h: {fast:.1f} s, "
                      f"{n / fast:,.0f} windows/s; straightforward / fast = {slow / fast:.2f}x")
    print()
    for line in ratios:
        print(f"- {line}")


def ingest_report(backends: dict[str, Callable[[], str]], args: argparse.Namespace) -> None:
    rates: dict[tuple[str, str, int], float] = {}
    print("| store | mode | writers | windows/s |\n|---|---|---|---|")
    for name, new_url in backends.items():
        modes = ["batched", "batched, no rollups"]
        for mode in ([] if args.batched_only else ["per window"]) + modes:
            for workers in (1, 2):
                rate = ingest_case(new_url(), mode, workers, args.windows)
                rates[(name, mode, workers)] = rate
                print(f"| {name} | {mode} | {workers} | {rate:,.0f} |")
    print()
    for name in backends:
        b, p = rates[(name, "batched", 1)], rates.get((name, "per window", 1), float("nan"))
        two = rates[(name, "batched", 2)] / b
        bare = rates[(name, "batched, no rollups", 1)]
        print(f"- {name}: batched / per window = {b / p:.1f}x; "
              f"2 writers / 1 (batched) = {two:.2f}x; batched with rollups / without = "
              f"{b / bare:.2f}x")
    if "PostgreSQL" in backends:
        ratio = rates[("PostgreSQL", "batched", 2)] / rates[("SQLite", "batched", 1)]
        print(f"- PostgreSQL 2 writers / SQLite 1 writer (batched) = {ratio:.2f}x")


if __name__ == "__main__":
    main()
