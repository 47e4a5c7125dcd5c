"""The fleet page of a fleet larger than one table page, in headless Chromium: the
counts come from ``GET /fleet`` (every device), the table shows 100 and pages on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from control_plane.services import devices, telemetry
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.models import Device
from control_plane.testing import reported_state, telemetry_window
from protocols import CameraStatus
from tests.browser_kit import Browser, chromium_path
from tests.conftest import Mosquitto
from tests.fleet_kit import serve_control_plane

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")
DEVICES = 250
TABLE_ROWS = "document.querySelectorAll('section:last-of-type table.grid tbody tr').length"
PAGER = "document.querySelector('p.pager')?.textContent"


def seed(url: str) -> None:
    now = datetime.now(UTC)
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        for i in range(DEVICES):
            s.add(Device(device_id=f"cam-{i:03d}", labels={"park": f"p{i % 5}"}, online=i % 2 == 0))
        s.flush()
        for i in range(DEVICES):
            state = reported_state(f"cam-{i:03d}", "rel-a").model_copy(update={
                "cameras": [CameraStatus(camera_id="c0", state="up" if i % 10 else "down")]})
            devices.apply_reported(s, state)
        for i in range(3):
            for seq in range(5):
                w = telemetry_window(f"cam-{i:03d}", seq, "rel-a", class_counts={"cat": 5},
                                     p95_ms=8.0 + i)
                end = now - timedelta(minutes=5 - seq)
                telemetry.ingest_window(s, w.model_copy(update={
                    "window_start": end - timedelta(minutes=1), "window_end": end}))
    engine.dispose()


def next_page(run: Callable[[str], Any]) -> None:
    run("document.querySelector('button[data-page=next]').click()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not str(run(PAGER) or "").startswith("101-200"):
        time.sleep(0.1)


def test_fleet_page_counts_the_whole_fleet_and_pages_the_table(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        seed(cp.settings.resolved_database_url)
        browser = Browser(tmp_path / "chromium-profile")
        values = {"rows": TABLE_ROWS, "pager": PAGER,
                  "stats": "[...document.querySelectorAll('.stat')].map(s => s.textContent)"
                           ".join('|')",
                  "lines": "document.querySelectorAll('svg.plot path.line').length"}
        url = f"{cp.url}/dashboard/#/fleet?token={cp.token}"
        try:
            first = browser.open(url, screenshot=tmp_path / "fleet.png", values=values)
            second = browser.open(url, values=values, act=next_page)
        finally:
            browser.stop()
    assert first.errors == [] and second.errors == [], (first.errors, second.errors)
    assert first.values["rows"] == 100
    assert first.values["pager"].startswith(f"1-100 of {DEVICES}")
    stats = first.values["stats"]
    assert f"{DEVICES}devices" in stats and f"{DEVICES // 2}online" in stats
    assert "225cameras up" in stats and "25cameras not up" in stats
    assert first.values["lines"] >= 2  # fleet fps and the three devices' latency
    assert second.values["rows"] == 100
    assert second.values["pager"].startswith(f"101-200 of {DEVICES}")
