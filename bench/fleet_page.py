"""The fleet page's API calls at N stored devices, in process, on PostgreSQL.

A fresh PostgreSQL database gets ``--devices`` devices (two cameras each, reported) and
``--windows`` telemetry windows stored through ingest; the real app (``create_app``, no
MQTT) then answers the three calls ``control_plane/web/views_fleet.js`` makes, in turns
of one call each, ``--rounds`` times, beside the chart points read the way they were
before migration 0017 (the cameras of the newest windows' JSON, read by the database)
and the way they are now (two columns written at ingest), and ``GET /fleet`` from an app
that counts the device figures at every request (``fleet_counts_max_age_seconds`` 0, as
before) beside the app that keeps them a few seconds (the default):

    python bench/fleet_page.py [--devices 10000] [--windows 3000] [--rounds 15]

Prints median and p95 per row, the ratio of the chart reads, and the load average before
and after: read the rows side by side, not as absolute times on a shared machine.
Needs PostgreSQL at PARKWATCH_TEST_POSTGRES_URL (default the local `test` database).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _fleet_rig
import numpy as np
import sqlalchemy as sa
from _machine import cpu_name

from control_plane.config import ControlPlaneSettings
from control_plane.services import devices, fleet_summary, telemetry
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import reported_state
from protocols import CameraStatus
from scripts import fleet_synth

# The chart points as GET /fleet read them before migration 0017: per window, the
# database walks the cameras of its stored JSON.
JSON_POINTS = sa.text(
    "SELECT w.id, sum((c->>'inference_fps')::float), max((c->'inference_ms'->>'p95')::float)"
    " FROM telemetry_window AS w LEFT JOIN LATERAL json_array_elements(CASE WHEN "
    "json_typeof(w.payload->'cameras') = 'array' THEN w.payload->'cameras' END) AS c "
    "ON true WHERE w.id = ANY(:ids) GROUP BY w.id")
POINTS = 300  # what the page charts


def seed(engine: sa.Engine, n_devices: int, n_windows: int) -> None:
    ids = [f"cam-{i:05d}" for i in range(n_devices)]
    cams = [CameraStatus(camera_id=c, state="up") for c in ("a", "b")]
    with session_scope(engine) as s:
        s.add_all(Device(device_id=d, labels={"park": f"p{i % 20}"}, online=i % 3 > 0)
                  for i, d in enumerate(ids))
        s.flush()
        devices.apply_reported_many(s, [reported_state(d, "r1").model_copy(
            update={"cameras": cams}) for d in ids])
    rng, profile = np.random.default_rng(1), fleet_synth.default_profile()
    start = datetime.now(UTC) - timedelta(hours=1)
    windows = [fleet_synth.telemetry_window(
        rng, profile, device_id=ids[k % n_devices], seq=k // n_devices,
        start=start + timedelta(seconds=k), seconds=60, camera_ids=["a", "b"], drift=0.0,
        release_id="r1") for k in range(n_windows)]
    for at in range(0, n_windows, 500):
        with session_scope(engine) as s:
            telemetry.ingest_windows(s, windows[at:at + 500])


def json_points(engine: sa.Engine) -> None:
    with session_scope(engine) as s:
        ids = list(s.execute(sa.text(
            "SELECT id FROM telemetry_window ORDER BY received_at DESC, id DESC LIMIT :n"),
            {"n": POINTS}).scalars())
        s.execute(JSON_POINTS, {"ids": ids}).all()


def column_points(engine: sa.Engine) -> None:
    with session_scope(engine) as s:
        fleet_summary.newest_points(s, POINTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--windows", type=int, default=3_000)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    url = _fleet_rig.postgres_db()
    if url is None:
        raise SystemExit("this benchmark needs PostgreSQL (PARKWATCH_TEST_POSTGRES_URL)")
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

    from control_plane.api import create_app

    engine = create_db_engine(url)
    try:
        upgrade(url)
        seed(engine, args.devices, args.windows)
        with tempfile.TemporaryDirectory() as tmp:
            settings = ControlPlaneSettings(data_dir=Path(tmp), database_url=url,
                                            rollout_tick_seconds=0)
            # The same app counting the device figures at every request, as it did
            # before they were kept (fleet_counts_max_age_seconds 0).
            counting = settings.model_copy(update={"fleet_counts_max_age_seconds": 0.0})
            with TestClient(create_app(settings, enable_mqtt=False)) as client, \
                    TestClient(create_app(counting, enable_mqtt=False)) as counting_client:
                token = settings.admin_token_path.read_text().strip()
                for c in (client, counting_client):
                    c.headers["Authorization"] = f"Bearer {token}"

                def call(path: str, via: TestClient = client,
                         **params: int | str) -> Callable[[], None]:
                    def run() -> None:
                        r = via.get(f"/api/v1{path}", params=params)
                        assert r.status_code == 200, r.text
                    return run

                rows: dict[str, Callable[[], None]] = {
                    "chart points: JSON read (before 0017)": lambda: json_points(engine),
                    "chart points: columns (now)": lambda: column_points(engine),
                    "GET /fleet?windows=300, counted at each request (max age 0)": call(
                        "/fleet", counting_client, windows=POINTS),
                    "GET /fleet?windows=300, figures kept (max age 5 s, now)": call(
                        "/fleet", windows=POINTS),
                    "GET /devices?limit=100": call("/devices", limit=100),
                    "GET /alerts?state=open&limit=1": call("/alerts", state="open", limit=1),
                }
                report(rows, args)
    finally:
        engine.dispose()
        _fleet_rig.drop_postgres_db(url)


def report(rows: dict[str, Callable[[], None]], args: argparse.Namespace) -> None:
    for run in rows.values():
        run()  # warm: caches, prepared statements
    times: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}  # this process's, not the database's
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        for name, run in rows.items():  # one turn each, so a busy neighbour slows them alike
            t, c = time.perf_counter(), time.process_time()
            run()
            times[name].append((time.perf_counter() - t) * 1000)
            cpu[name].append((time.process_time() - c) * 1000)
    load_after = os.getloadavg()
    print(f"## Fleet page calls ({args.devices} devices, {args.windows} windows, "
          f"{args.rounds} rounds; {cpu_name()}, {os.cpu_count()} cores)")
    print(f"load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f}\n")
    print("| call | median ms | p95 ms | median CPU ms (bench process) |\n|---|---:|---:|---:|")
    for name, ts in times.items():
        p95 = float(np.percentile(ts, 95))
        print(f"| {name} | {statistics.median(ts):.1f} | {p95:.1f} | "
              f"{statistics.median(cpu[name]):.1f} |")
    old, new = (statistics.median(times[k]) for k in list(rows)[:2])
    print(f"\nchart points, columns / JSON read (medians): {new / old:.2f}")
    old, new = (statistics.median(times[k]) for k in list(rows)[2:4])
    print(f"GET /fleet, figures kept / counted at each request (medians): {new / old:.2f}")


if __name__ == "__main__":
    main()
