"""The drift page in headless Chromium lists the camera × conditions without a baseline,
each with why and the fix, as the analysis recorded them (``/drift/baselines/learning``):
one collecting its night windows, one on a device whose release is not healthy yet; the
device page lists its own."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.drift import synthetic
from control_plane.services import devices, telemetry
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.models import Device
from control_plane.testing import register_profiled_release, reported_state
from protocols import TelemetryWindow
from tests.browser_kit import Browser, chromium_path
from tests.conftest import free_port, serving

pytestmark = pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed")
# The device page's "not judged" cell of its one baseline: its text and its title.
NOT_JUDGED = ("[...document.querySelectorAll('td span[title*=reset-baseline]')].map("
              "s => [s.textContent, s.getAttribute('title')])")
SECTION = ("[...document.querySelectorAll('section')].find("
           "s => s.querySelector('h2').textContent.startsWith('Not judged yet'))")


def seed(url: str) -> None:
    """cam-n: 12 night windows of a healthy release; cam-w: 12 day windows of a release
    still warming up; cam-q: 40 day windows of a healthy release, 5 busy enough to judge
    its crops, all with region telemetry (a baseline that judges few features)."""
    profile, rng, now = synthetic.profile(), np.random.default_rng(1), datetime.now(UTC)
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        register_profiled_release(s, "rel-a", profile)
        for device, stage in (("cam-n", "healthy"), ("cam-w", "warmed"), ("cam-q", "healthy")):
            s.add(Device(device_id=device, labels={}))
            s.flush()
            devices.apply_reported(s, reported_state(device, "rel-a", stage))
    for seq in range(40):
        end = now - timedelta(minutes=40 - seq)
        # cam-q: 40 day windows, 35 of them too quiet to judge (5 crops each).
        plan = [("cam-q", "day", 5 if seq < 35 else 150)]
        if seq >= 28:
            plan += [("cam-n", "night", 120), ("cam-w", "day", 120)]
        with session_scope(engine) as s:
            for device, condition, frames in plan:
                w = synthetic.window(profile, device, seq, rng=rng, release_id="rel-a",
                                     start=end - timedelta(minutes=1), condition=condition,
                                     frames=frames)
                if device == "cam-q":  # region features: levels from every window
                    w["cameras"][0] |= synthetic.regions(rng, frames)
                telemetry.ingest_windows(s, [TelemetryWindow.model_validate(w)],
                                         received_at=end)
    engine.dispose()


def test_drift_page_says_why_a_camera_has_no_baseline(tmp_path: Path) -> None:
    shots = Path(os.environ.get("PARKWATCH_TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", port=port,
                                    drift={"analysis_interval_s": 0, "baseline_windows": 40})
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        token = settings.admin_token_path.read_text().strip()
        seed(settings.resolved_database_url)
        r = httpx.post(f"{url}/api/v1/drift/run", json={},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert r.status_code == 200, r.text
        browser = Browser(tmp_path / "chromium-profile")
        values = {"rows": f"[...{SECTION}.querySelectorAll('tbody tr')].map("
                          "tr => [...tr.querySelectorAll('td')].map(td => td.textContent))"}
        try:
            page = browser.open(f"{url}/dashboard/#/drift?token={token}",
                                screenshot=shots / "drift-learning.png", values=values)
            device = browser.open(f"{url}/dashboard/#/device/cam-w?token={token}",
                                  screenshot=shots / "device-learning.png", values=values)
            quiet = browser.open(f"{url}/dashboard/#/device/cam-q?token={token}",
                                 screenshot=shots / "device-not-judged.png",
                                 values={"cell": NOT_JUDGED})
        finally:
            browser.stop()
    assert page.errors == [], page.errors
    assert page.status.get("ready") == "1" and page.status.get("errors") == "0", page.status
    rows = {(r[0], r[2]): r for r in page.values["rows"]}
    assert set(rows) == {("cam-n", "night"), ("cam-w", "day")}
    night = rows[("cam-n", "night")]
    assert night[4:7] == ["12 / 40", "collecting windows",
                          "needs 40 windows at night, has 12: it fits by itself once they arrive"]
    warm = rows[("cam-w", "day")]
    assert warm[5] == "release not healthy here" and "stage warmed" in warm[6]
    # The device page lists its own, without a device column.
    assert device.errors == [], device.errors
    [only] = device.values["rows"]
    assert only[:2] == ["gate", "day"] and only[4] == "release not healthy here"
    # A baseline that judges few of its features says so, and how to fix it.
    assert quiet.errors == [], quiet.errors
    [(text, title)] = quiet.values["cell"]
    assert text.startswith("most not judged") and "reset it while the camera is busier" in text
    assert title.endswith("--device cam-q --camera gate --condition day`")


BASELINES = ("[...document.querySelectorAll('section')].find("
             "s => s.querySelector('h2').textContent.startsWith('Production baselines'))")


def test_device_page_after_a_promotion_shows_the_new_releases_baselines(
        tmp_path: Path) -> None:
    # cam-p learned its day baseline under rel-a, then was promoted to rel-b: the page
    # listed rel-a's baseline as the one judging the camera.
    profile, rng, now = synthetic.profile(), np.random.default_rng(2), datetime.now(UTC)
    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", port=port,
                                    drift={"analysis_interval_s": 0, "baseline_windows": 20})
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        token = settings.admin_token_path.read_text().strip()
        engine = create_db_engine(settings.resolved_database_url)

        def promote_and_stream(release: str, first: int, count: int) -> None:
            with session_scope(engine) as s:
                devices.apply_reported(s, reported_state("cam-p", release, "healthy"))
            for seq in range(first, first + count):
                end = now - timedelta(minutes=60 - seq)
                w = synthetic.window(profile, "cam-p", seq, rng=rng, release_id=release,
                                     start=end - timedelta(minutes=1), condition="day",
                                     frames=150)
                with session_scope(engine) as s:
                    telemetry.ingest_windows(s, [TelemetryWindow.model_validate(w)],
                                             received_at=end)
            r = httpx.post(f"{url}/api/v1/drift/run", json={},
                           headers={"Authorization": f"Bearer {token}"}, timeout=60)
            assert r.status_code == 200, r.text

        with session_scope(engine) as s:
            for release in ("rel-a", "rel-b"):
                register_profiled_release(s, release, profile)
            s.add(Device(device_id="cam-p", labels={}))
        promote_and_stream("rel-a", 0, 20)
        promote_and_stream("rel-b", 20, 8)
        engine.dispose()
        browser = Browser(tmp_path / "chromium-profile")
        cells = "[...{}.querySelectorAll('tbody tr')].map(tr => [...tr.querySelectorAll('td')]" \
                ".map(td => td.textContent))"
        try:
            page = browser.open(
                f"{url}/dashboard/#/device/cam-p?token={token}",
                screenshot=tmp_path / "device-promoted.png",
                values={"title": f"{BASELINES}.querySelector('h2').textContent",
                        "note": f"{BASELINES}.querySelector('p.superseded')?.textContent",
                        "baselines": cells.format(BASELINES),
                        "learning": cells.format(SECTION)})
        finally:
            browser.stop()
    assert page.errors == [], page.errors
    # rel-a's baseline is superseded (said, not listed); rel-b's is learning, with the reason.
    assert [r for r in page.values["baselines"] if len(r) > 1] == []
    assert page.values["title"] == ("Production baselines of release rel-b "
                                    "(per camera and condition)")
    assert page.values["note"].startswith("1 baseline(s) of release rel-a superseded")
    [row] = page.values["learning"]
    assert row[:3] == ["gate", "day", "rel-b"] and row[4] == "collecting windows"
