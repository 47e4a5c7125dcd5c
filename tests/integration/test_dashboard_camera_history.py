"""A device page in headless Chromium shows each camera's last 30 days from the daily
rollups (``GET /drift/history``): a chart per camera, a line per class and condition, and
the windows behind it; the windows go in through ingest, which writes the rollups."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from control_plane.drift import synthetic
from control_plane.services import devices, telemetry
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.models import Device
from control_plane.testing import register_profiled_release, reported_state
from protocols import CameraStatus, TelemetryWindow
from tests.browser_kit import Browser, chromium_path
from tests.conftest import Mosquitto
from tests.fleet_kit import serve_control_plane

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")
DAYS, PER_CONDITION = 4, 3
SECTION = "[...document.querySelectorAll('section')].find(s => s.querySelector('.camera-history'))"


def seed(url: str) -> None:
    """cam-h: camera gate by day and by night, camera yard by day, on ``DAYS`` days."""
    profile, rng, now = synthetic.profile(), np.random.default_rng(0), datetime.now(UTC)
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        s.add(Device(device_id="cam-h", labels={}))
        register_profiled_release(s, "rel-a", profile)
        s.flush()
        devices.apply_reported(s, reported_state("cam-h", "rel-a").model_copy(update={
            "cameras": [CameraStatus(camera_id="gate", state="up"),
                        CameraStatus(camera_id="yard", state="up")]}))
    seq, plan = 0, (("day", 0.0, ("gate", "yard")), ("night", 1.5, ("gate",)))
    for day in range(DAYS, 0, -1):
        for condition, shift, cameras in plan:
            for _ in range(PER_CONDITION):
                end = now - timedelta(days=day, minutes=-seq)
                w = synthetic.window(profile, "cam-h", seq, rng=rng, release_id="rel-a",
                                     start=end - timedelta(minutes=1), shift=shift,
                                     condition=condition)
                w["cameras"] = [{**w["cameras"][0], "camera_id": c} for c in cameras]
                with session_scope(engine) as s:
                    telemetry.ingest_windows(s, [TelemetryWindow.model_validate(w)],
                                             received_at=end)
                seq += 1
    engine.dispose()


def test_device_page_charts_each_cameras_history(tmp_path: Path, mosquitto: Mosquitto) -> None:
    shots = Path(os.environ.get("PARKWATCH_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        seed(cp.settings.resolved_database_url)
        browser = Browser(tmp_path / "chromium-profile")
        values = {
            "captions": f"[...{SECTION}.querySelectorAll('figcaption')].map(c => c.textContent)",
            "lines": f"[...{SECTION}.querySelectorAll('svg.plot')].map("
                     "s => s.querySelectorAll('path.line').length)",
        }
        try:
            page = browser.open(f"{cp.url}/dashboard/#/device/cam-h?token={cp.token}",
                                screenshot=shots / "device-camera-history.png", values=values)
        finally:
            browser.stop()
    assert page.errors == [], page.errors
    assert page.status.get("ready") == "1" and page.status.get("errors") == "0", page.status
    gate, yard = page.values["captions"]
    windows = DAYS * PER_CONDITION
    assert gate.startswith("Camera gate") and f"({2 * windows} windows)" in gate
    assert yard.startswith("Camera yard") and f"({windows} windows)" in yard
    labels = len(synthetic.LABELS)
    assert page.values["lines"] == [2 * labels, labels]  # a class x condition each
