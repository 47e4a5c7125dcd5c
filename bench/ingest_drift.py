"""Telemetry ingest throughput into the store, and the time of a fleet drift report.

    python bench/ingest_drift.py [--windows 2000] [--devices 100] [--hours 2]
    python bench/ingest_drift.py --devices 1000 --hours 24     # the full-size report

Ingest (windows/s, realistic payloads with every histogram filled, as agents send them),
measured side by side on SQLite (WAL) and PostgreSQL (when a server answers at
PARKWATCH_TEST_POSTGRES_URL), with one and two writer processes:

- per window: ``services.telemetry.ingest_window`` and one commit per window (what the
  MQTT ingest path does);
- batched: ``services.telemetry.ingest_windows``, 500 windows per transaction.

Drift: ``drift.analyser.run_analysis`` over DEVICES x HOURS of 1-minute windows (one
release): device reports with K-of-N window verdicts, the fleet report and alerts.
The time is also given per 1,000 windows, extrapolated linearly to 1,000 devices x
24 h (1.44 M windows) when the run was smaller, and measured again after retention has
merged every window older than one hour into hourly windows (what
``[retention] downsample_after_hours = 1`` would keep).
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
from fleet_ingest import drop_postgres_db, postgres_db  # fresh PostgreSQL databases
from sqlmodel import Session

from control_plane.db import create_db_engine, session_scope, upgrade
from control_plane.drift import DriftSettings, synthetic
from control_plane.drift.analyser import run_analysis
from control_plane.drift.settings import RetentionSettings
from control_plane.models import Device, Model, ModelVersion, Release
from control_plane.services.telemetry import ingest_window, ingest_windows
from control_plane.services.telemetry_retention import apply_retention
from protocols import TelemetryWindow

START = datetime(2026, 6, 1, tzinfo=UTC)
RELEASE = "petnet-v1-bench"
POOL = 64  # distinct payloads, reused with other device ids, seqs and times


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
        model = Model(name="petnet")
        s.add(model)
        s.flush()
        spec = {"reference_profile": synthetic.profile().model_dump(mode="json")}
        version = ModelVersion(model_id=model.id or 0, number=1, version="1",
                               primary_sha256="0" * 64, spec=spec, created_by="bench")
        s.add(version)
        s.flush()
        s.add(Release(release_id=RELEASE, model_version_id=version.id or 0, model_name="petnet",
                      model_version="1", key_id="0" * 16, primary_sha256="0" * 64, manifest={},
                      created_by="bench"))
    engine.dispose()


def _writer(
    url: str, mode: str, device_ids: list[int], per_device: int
) -> tuple[int, float, float]:
    """Write this process's windows; returns (count, start, end) in wall-clock seconds, so
    process start-up and payload building stay out of the measurement."""
    pooled = pool()
    engine = create_db_engine(url)
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


def _timed_report(engine: Any, minutes: int, devices: int) -> float:
    settings = DriftSettings(range_minutes=minutes, analysis_interval_s=0)
    t0 = time.perf_counter()
    with Session(engine, expire_on_commit=False) as s:
        result = run_analysis(s, settings, now=START + timedelta(minutes=minutes + 1))
    assert result.device_reports == devices
    return time.perf_counter() - t0


def drift_case(url: str, devices: int, hours: int) -> tuple[int, float, float]:
    """(windows, report seconds on 1-minute windows, report seconds after downsampling
    everything older than one hour into hourly windows)."""
    prepare(url, devices)
    engine = create_db_engine(url)
    pooled = pool()
    minutes = hours * 60
    for d in range(devices):
        with session_scope(engine) as s:
            ingest_windows(s, [make(pooled, d, q) for q in range(minutes)])
    raw = _timed_report(engine, minutes, devices)
    hourly = RetentionSettings(downsample_after_hours=1, bucket_minutes=60,
                               delete_after_days=3650)
    with Session(engine, expire_on_commit=False) as s:
        apply_retention(s, hourly, START + timedelta(minutes=minutes + 1))
    merged = _timed_report(engine, minutes, devices)
    engine.dispose()
    return devices * minutes, raw, merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", type=int, default=2000, help="Windows per ingest case.")
    ap.add_argument("--devices", type=int, default=100, help="Devices in the drift report.")
    ap.add_argument("--hours", type=int, default=2, help="Hours of 1-minute windows.")
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
    rates: dict[tuple[str, str, int], float] = {}
    print("| store | mode | writers | windows/s |\n|---|---|---|---|")
    for name, new_url in backends.items():
        for mode in ("per window", "batched"):
            for workers in (1, 2):
                rate = ingest_case(new_url(), mode, workers, args.windows)
                rates[(name, mode, workers)] = rate
                print(f"| {name} | {mode} | {workers} | {rate:,.0f} |")
    print()
    for name in backends:
        b, p = rates[(name, "batched", 1)], rates[(name, "per window", 1)]
        two = rates[(name, "batched", 2)] / b
        print(f"- {name}: batched / per window = {b / p:.1f}x; "
              f"2 writers / 1 (batched) = {two:.2f}x")
    if "PostgreSQL" in backends:
        ratio = rates[("PostgreSQL", "batched", 2)] / rates[("SQLite", "batched", 1)]
        print(f"- PostgreSQL 2 writers / SQLite 1 writer (batched) = {ratio:.2f}x")
    print("\n| store | devices x hours | windows | report s | s per 1,000 windows | "
          "1,000 devices x 24 h (s, linear) | report s, hourly-merged after 1 h | ratio |"
          "\n|---|---|---|---|---|---|---|---|")
    for name, new_url in backends.items():
        n, secs, merged = drift_case(new_url(), args.devices, args.hours)
        full = secs * 1_440_000 / n
        print(f"| {name} | {args.devices} x {args.hours} | {n:,} | {secs:.1f} | "
              f"{secs * 1000 / n:.2f} | {full:,.0f} | {merged:.1f} | {secs / merged:.1f}x |")


if __name__ == "__main__":
    main()
