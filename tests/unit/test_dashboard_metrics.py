"""The dashboard reads drift reports the way the control plane writes them.

Real statistics from ``control_plane.drift.compare`` (over simulated night windows) go
through the dashboard's own ``metrics.js`` in Node; the figures it would chart must be
the ones the report holds. Skipped where Node is not installed (the browser test covers
the page as a whole).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from control_plane.config.drift import DriftSettings
from control_plane.drift.compare import compare
from control_plane.drift.summary import Summary
from scripts.fleet_synth import default_profile, telemetry_window

METRICS_JS = Path(__file__).resolve().parents[2] / "control_plane" / "web" / "metrics.js"
SCRIPT = """
import { readFileSync } from "node:fs";
import * as m from "%s";
const input = JSON.parse(readFileSync(0, "utf8"));
const s = input.statistics;
const windows = input.windows;
console.log(JSON.stringify({
  score: m.driftScore(s), alarm: m.driftAlarm(s), accuracy: m.estimatedAccuracy(s),
  reference: m.referenceAccuracy(s), features: m.featurePsi(s),
  empty: [m.driftScore({}), m.driftAlarm(null), m.estimatedAccuracy({ a: "x" })],
  confidence: m.meanConfidence(windows[0]),
  fleetFps: m.fleetSeries(windows, m.inferenceFps, "sum", 60000).map((p) => p[1]),
}));
"""


def run_metrics(statistics: dict[str, Any], windows: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the dashboard's metrics.js is checked in Chromium")
    out = subprocess.run(
        [node, "--input-type=module", "-e", SCRIPT % METRICS_JS.as_uri()],
        input=json.dumps({"statistics": statistics, "windows": windows}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_dashboard_figures_match_a_real_drift_report() -> None:
    profile = default_profile(bins=10)
    rng = np.random.default_rng(11)
    start = datetime(2026, 6, 1, 22, 0, tzinfo=UTC)
    windows = [
        telemetry_window(
            rng,
            profile,
            device_id=f"sim-{d:04d}",
            seq=1,
            start=start,
            seconds=60.0,
            camera_ids=["a"],
            drift=0.7,
            fps=2.0,
            release_id="r1",
        )
        for d in range(2)
    ]
    summary = Summary.empty(profile)
    for w in windows:
        assert summary.add_window(w.model_dump(mode="json"))
    stats = compare(profile, summary, DriftSettings())
    # The report must survive the API (JSON) unchanged for the page to read it.
    stats = json.loads(json.dumps(stats))
    # What GET /api/v1/telemetry returns per window.
    records = [
        {
            "device_id": w.device_id,
            "window_start": w.window_start.isoformat(),
            "window_end": w.window_end.isoformat(),
            "window": w.model_dump(mode="json"),
        }
        for w in windows
    ]
    got = run_metrics(stats, records)

    judged = {name: f for name, f in stats["features"].items() if "psi" in f}
    everything = {**judged, "classes": stats["classes"]}
    top = max(everything, key=lambda name: everything[name]["psi"])
    assert got["score"] == pytest.approx(everything[top]["psi"])
    assert got["alarm"] == pytest.approx(everything[top]["psi_alarm"])
    assert got["accuracy"] == pytest.approx(stats["estimated_accuracy"])
    assert got["reference"] == pytest.approx(stats["reference_accuracy"])
    assert got["features"] == pytest.approx({n: f["psi"] for n, f in everything.items()})
    assert got["empty"] == [None, None, None]
    conf = windows[0].cameras[0].confidence_hist
    expected = sum(n * (i + 0.5) / len(conf) for i, n in enumerate(conf)) / sum(conf)
    assert got["confidence"] == pytest.approx(expected)
    # Two devices in one minute: the fleet's frame rate is the sum of theirs.
    assert got["fleetFps"] == pytest.approx([2 * 2.0])
