"""The drift analysis's cost while a rare condition learns its baseline: this code against
another checkout's, side by side on copies of one store.

    python bench/drift_learning.py --before DIR [--devices 100] [--steps 6]

DEVICES healthy devices (one camera each) of one release, each with 32 hours of 1-minute
windows: daylight, then a dusk spell that has just begun (its 20 latest windows). The
day has its baseline (learned by a first analysis); dusk is learning, as a dusk of 40
minutes a day always was before its windows were kept across analyses. Then STEPS
times: one more dusk window per device into both stores (each window received as it
ends), and an analysis of each store, one by ``--before``'s ``control_plane`` and one
by this one's, alternately (ABAB; each in a fresh process, timed inside it), printing
its wall time, process CPU, the CPU of ``learning.learn_missing`` within it, and the
load. The first analysis of the dusk spell reads the device's latest 8 x
baseline_windows windows in both (the key is new); the later ones are the steady state
that the pool changes. ``--before DIR``: e.g. ``git archive COMMIT control_plane | tar
-x -C DIR`` (the store is migrated by this code; the before code ignores the new table).
SQLite files only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from control_plane.drift import synthetic
from control_plane.services.telemetry import ingest_windows
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import register_profiled_release
from protocols import TelemetryWindow

START = datetime(2026, 6, 1, tzinfo=UTC)
RELEASE = "petnet-v1-bench"
HISTORY = 32 * 60  # windows per device before the steps: 8 x baseline_windows
DUSK = 20  # of them, the dusk spell's


def prepare(url: str, devices: int) -> None:
    upgrade(url)
    engine = create_db_engine(url)
    healthy = {"active": {"release_id": RELEASE, "stage": "healthy"}}
    with session_scope(engine) as s:
        s.add_all(Device(device_id=f"cam-{d}", labels={}, active_release_id=RELEASE,
                         reported=healthy) for d in range(devices))
        register_profiled_release(s, RELEASE, synthetic.profile(), created_by="bench")
    engine.dispose()


class Feed:
    """Windows from a pool of 64 distinct payloads per condition, re-addressed."""

    def __init__(self) -> None:
        ref, rng = synthetic.profile(), np.random.default_rng(0)
        self.pool = {c: [TelemetryWindow.model_validate(synthetic.window(
            ref, "cam-0", i, rng=rng, release_id=RELEASE, start=START, frames=120,
            condition=c)) for i in range(64)] for c in ("day", "dusk")}

    def send(self, url: str, devices: int, seqs: range, condition: str) -> None:
        """Windows ``seqs`` of every device, each batch of a minute received at its end."""
        engine = create_db_engine(url)
        try:
            for seq in seqs:
                start = START + timedelta(minutes=seq)
                batch = [self.pool[condition][(d * 7 + seq) % 64].model_copy(update={
                    "device_id": f"cam-{d}", "seq": seq, "window_start": start,
                    "window_end": start + timedelta(minutes=1)}) for d in range(devices)]
                with session_scope(engine) as s:
                    ingest_windows(s, batch, received_at=start + timedelta(minutes=1))
        finally:
            engine.dispose()


def analyse(url: str, now: str) -> tuple[float, float, float]:
    """One analysis at ``now`` (in this process): wall s, process CPU s, learn_missing CPU s."""
    from sqlmodel import Session

    from control_plane.config.drift import DriftSettings
    from control_plane.drift import analyser, learning

    spent = [0.0]
    learn = learning.learn_missing

    def timed(*args: object, **kwargs: object) -> int:
        c0 = time.process_time()
        try:
            return learn(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            spent[0] += time.process_time() - c0

    learning.learn_missing = timed  # type: ignore[assignment]
    engine = create_db_engine(url)
    t0, c0 = time.perf_counter(), time.process_time()
    with Session(engine, expire_on_commit=False) as s:
        analyser.run_analysis(s, DriftSettings(analysis_interval_s=0),
                              now=datetime.fromisoformat(now))
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    return took, cpu, spent[0]


def timed_by(tree: Path, url: str, now: datetime) -> tuple[float, float, float]:
    """``analyse`` by the ``control_plane`` under ``tree``, in a fresh process."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import drift_learning as b; print(json.dumps(b.analyse({url!r}, "
            f"{now.isoformat()!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(tree)})
    took, cpu, learn = json.loads(out.stdout.strip().splitlines()[-1])
    return float(took), float(cpu), float(learn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", type=Path, required=True)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--steps", type=int, default=6)
    a = ap.parse_args()
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        urls = {who: f"sqlite:///{Path(tmp) / who}.db" for who in ("before", "now")}
        prepare(urls["before"], a.devices)
        feed = Feed()
        t0 = time.perf_counter()
        feed.send(urls["before"], a.devices, range(HISTORY - DUSK), "day")
        feed.send(urls["before"], a.devices, range(HISTORY - DUSK, HISTORY), "dusk")
        shutil.copy(Path(tmp) / "before.db", Path(tmp) / "now.db")
        print(f"seeded {a.devices} devices x {HISTORY} windows in "
              f"{time.perf_counter() - t0:.0f} s")
        trees = {"before": a.before, "now": here}
        print("| step | code | wall s | CPU s | learn_missing CPU s | load |")
        print("|---|---|---|---|---|---|")
        got: dict[str, list[tuple[float, float, float]]] = {"before": [], "now": []}
        for step in range(a.steps + 1):
            if step:
                seq = HISTORY + step - 1
                for url in urls.values():
                    feed.send(url, a.devices, range(seq, seq + 1), "dusk")
            now = START + timedelta(minutes=HISTORY + step, seconds=30)
            order = ("before", "now") if step % 2 == 0 else ("now", "before")
            for who in order:
                took, cpu, learn = timed_by(trees[who], urls[who], now)
                if step:
                    got[who].append((took, cpu, learn))
                print(f"| {step} | {who} | {took:.2f} | {cpu:.2f} | {learn:.2f} | "
                      f"{os.getloadavg()[0]:.1f} |")
        med = {who: [statistics.median(t[i] for t in got[who]) for i in range(3)]
               for who in got}
        print(f"| steps 1-{a.steps} median | before / now | "
              + " | ".join(f"{med['before'][i] / max(med['now'][i], 1e-9):.1f}x"
                           for i in range(3)) + " | |")


if __name__ == "__main__":
    main()
