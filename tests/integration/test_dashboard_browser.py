"""The dashboard in a real browser: headless Chromium against a running control plane.

The control plane runs in uvicorn with SQLite and a real Mosquitto; the fleet simulator
(real MQTT clients) provisions devices, streams telemetry and acts on two real rollouts;
registry, releases, groups and jobs go through the API. Drift reports and alerts have no
write API (drift analysis writes them inside the control plane), so they are written with
the service functions that analysis uses. Every page must then render its charts with no
error of any kind (exception, console.error, failed request, CSP violation), and each page
is saved as a screenshot: in $PARKWATCH_TEST_ARTIFACTS when set, else in pytest's tmp dir.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.config import ControlPlaneSettings
from control_plane.services import alerts, telemetry
from control_plane.store import db
from control_plane.testing import registration
from protocols import CameraWindow, DeviceEvent, TelemetryWindow
from protocols.messages import HEATMAP_COLS, HEATMAP_ROWS
from scripts.fleet_agents import Fleet, ManifestCache
from scripts.fleet_sim import provision
from scripts.fleet_synth import DriftPlan, SimConfig, default_profile
from tests.agent_kit import wait_until as wait_for
from tests.browser_kit import Browser, chromium_path
from tests.conftest import Mosquitto
from tests.fleet_kit import ControlPlane, serve_control_plane

pytestmark = pytest.mark.slow
FAILED_GATES_JS = "document.querySelectorAll('details.gates[open] .chip.bad').length"
DEVICES = 12
BACKFILL = 15
WINDOW_S = 60.0
SIM = SimConfig(
    devices=DEVICES,
    prefix="sim",
    cameras=2,
    window_seconds=WINDOW_S,
    interval=2.0,
    backfill=BACKFILL,
    drift=DriftPlan(fraction=0.25, magnitude=0.8, after_windows=6, ramp_windows=4),
    camera_faults=0.1,
)
# view -> charts it must draw with this data (an empty chart says "no data" and does not count)
VIEWS = {
    "fleet": 2,
    "device/{canary}": 6,  # the device that refused the bad release; a history per camera
    "park": 2,  # the two cameras with tracked animals draw visits per hour
    "rollouts": 0,
    "drift": 3,
    "accuracy": 3,
    "alerts": 1,
    "label": 0,
    "jobs": 1,
    "registry": 1,
}


@pytest.fixture
def control_plane(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        yield cp


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PARKWATCH_TEST_ARTIFACTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def seed_registry(http: httpx.Client) -> list[str]:
    """petnet v1 (day data), v2 retrained from v1 with night data, v3 a regression that the
    devices will refuse; datasets, aliases and one release per version."""
    for dataset, source in (("ds-1", "synthetic day"), ("ds-2", "synthetic day + night")):
        n = 400 * int(dataset[-1])
        http.post(
            "/api/v1/datasets",
            json={
                "name": "parks",
                "version": dataset,
                "sample_count": 3 * n,
                "class_counts": {"cat": n, "dog": n, "empty": n},
                "source": source,
            },
        ).raise_for_status()
    releases = []
    for version, (dataset, acc, parent) in enumerate(
        [("ds-1", 0.91, None), ("ds-2", 0.95, "1"), ("ds-2", 0.96, "2")], start=1
    ):
        blob = f"model {version}".encode()
        sha = http.post("/api/v1/artifacts", content=blob).json()["sha256"]
        spec = registration(
            "petnet",
            [(sha, len(blob), "int8")],
            metrics={"accuracy": acc, "macro_f1": acc - 0.02},
            reference_profile=default_profile(),
        )
        body = spec.model_dump(mode="json")
        body["lineage"].update(dataset_version=dataset, parent_version=parent)
        http.post("/api/v1/models/petnet/versions", json=body).raise_for_status()
        release = http.post(
            "/api/v1/releases", json={"model_name": "petnet", "version": str(version)}
        )
        releases.append(release.json()["release_id"])
    http.put("/api/v1/models/petnet/aliases/production", json={"version": "1"}).raise_for_status()
    http.put("/api/v1/models/petnet/aliases/challenger", json={"version": "2"}).raise_for_status()
    return releases


def seed_jobs(http: httpx.Client) -> None:
    done = http.post(
        "/api/v1/jobs", json={"model_name": "petnet", "trigger": "drift", "dataset_version": "ds-2"}
    ).json()["job_id"]
    for update in (
        {"status": "running", "stage": "train", "progress": 0.5},
        {"status": "succeeded", "progress": 1.0, "result_version": "2"},
    ):
        http.patch(f"/api/v1/jobs/{done}", json=update).raise_for_status()
    running = http.post("/api/v1/jobs", json={"model_name": "petnet", "trigger": "schedule"})
    http.patch(
        f"/api/v1/jobs/{running.json()['job_id']}",
        json={"status": "running", "stage": "evaluate", "progress": 0.7},
    ).raise_for_status()


def report_statistics(level: float, rng: random.Random) -> dict[str, Any]:
    """Statistics shaped like ``control_plane.drift.compare``'s, for a drift ``level``."""
    weights = {"brightness": 0.6, "contrast": 0.4, "sharpness": 0.2, "saturation": 0.3}
    alarm = 0.1 + rng.uniform(-0.005, 0.005)  # calibrated to the sample size: varies a bit
    features = {}
    for name, weight in weights.items():
        psi = max(0.0, 0.02 + level * weight + rng.gauss(0, 0.01))
        features[name] = {
            "psi": psi,
            "psi_alarm": alarm,
            "js": psi / 3,
            "js_alarm": 0.12,
            "drifted": psi > alarm,
        }
    return {
        "features": features,
        "classes": {"psi": 0.01 + level * 0.2, "psi_alarm": alarm},
        "reference_accuracy": 0.9,
        "estimated_accuracy": 0.9 - 0.3 * level + rng.gauss(0, 0.005),
        "drifted": any(f["drifted"] for f in features.values()),
    }


def seed_drift(settings: ControlPlaneSettings, release_id: str) -> None:
    """Per-device and fleet reports over the backfilled windows; an alert per night camera
    when its drift first holds, and a fleet alert."""
    engine = db.create_db_engine(settings.resolved_database_url)
    now = datetime.now(UTC)
    rng = random.Random(7)
    alerted: set[str | None] = set()
    try:
        with db.session_scope(engine) as session:
            for k in range(BACKFILL):
                end = now - timedelta(seconds=(BACKFILL - k) * WINDOW_S)
                levels = [SIM.drift.level(i, DEVICES, k) for i in range(DEVICES)]
                scopes: list[tuple[str | None, float]] = [
                    *((f"sim-{i:04d}", lv) for i, lv in enumerate(levels)),
                    (None, sum(levels) / DEVICES),
                ]
                for device_id, level in scopes:
                    stats = report_statistics(level, rng)
                    report = alerts.record_drift_report(
                        session,
                        device_id=device_id,
                        release_id=release_id,
                        window_start=end - timedelta(seconds=WINDOW_S),
                        window_end=end,
                        window_count=1,
                        sample_count=600,
                        drifted=stats["drifted"],
                        statistics=stats,
                    )
                    if stats["drifted"] and device_id not in alerted:
                        alerted.add(device_id)
                        where = device_id or f"{sum(lv > 0.2 for lv in levels)} devices"
                        alert = alerts.raise_alert(
                            session,
                            "drift",
                            "warning" if device_id else "critical",
                            f"brightness drift on {where} held 3 of the last 5 windows",
                            device_id=device_id,
                            release_id=release_id,
                            drift_report_id=report.id,
                        )
                        alert.created_at = alert.updated_at = end  # raised back then
    finally:
        engine.dispose()


def seed_park(settings: ControlPlaneSettings, device: dict[str, Any]) -> None:
    """Tracks on two cameras of one device, as its agent's events would bring them."""
    engine = db.create_db_engine(settings.resolved_database_url)
    seq = 10_000
    try:
        with db.session_scope(engine) as session:
            for camera in ("cam0", "cam1"):
                for track, label in enumerate(("dog", "cat", "dog")):
                    for kind in ("animal_appeared", "animal_left"):
                        seq += 1
                        event = DeviceEvent(
                            device_id=device["device_id"], seq=seq, kind=kind,
                            camera_id=camera, track_id=track, label=label, confidence=0.93,
                            box=(0.2 + 0.1 * track, 0.5, 0.1, 0.1), dwell_seconds=30.0,
                        )
                        telemetry.ingest_event(session, event)
            now = datetime.now(UTC)
            heat = [0] * (HEATMAP_COLS * HEATMAP_ROWS)
            for cell in (100, 101, 117, 118, 133):  # a path across the lawn
                heat[cell] = 4
            cameras = [CameraWindow(camera_id=c, state="up", mode="regions", condition="day",
                                    animals={"dog": 2, "cat": 1}, animal_heatmap=heat)
                       for c in ("cam0", "cam1")]
            telemetry.ingest_windows(session, [TelemetryWindow(
                device_id=device["device_id"], seq=10_000, window_start=now - timedelta(minutes=1),
                window_end=now, cameras=cameras)])
    finally:
        engine.dispose()


def test_every_page_renders_its_charts_without_errors(
    control_plane: ControlPlane, mosquitto: Mosquitto, artefacts: Path, tmp_path: Path
) -> None:
    if chromium_path() is None:
        pytest.skip("chromium is not installed: apt-get install -y chromium (scripts/bootstrap.sh)")
    stop = threading.Event()
    with control_plane.http() as http:
        releases = seed_registry(http)
        sim_config = dataclasses.replace(SIM, reject_releases=frozenset({releases[2]}))
        provision(http, sim_config)
        fleet = Fleet(sim_config, mosquitto.url, ManifestCache(http))
        sim = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
        sim.start()
        try:
            wait_for(
                lambda: (
                    http.get("/api/v1/telemetry", params={"limit": 1}).json()["total"]
                    >= DEVICES * BACKFILL
                ),
                30,
                "the simulator's backfilled telemetry",
            )
            rollouts = []
            for condition, release, mode in (
                ("day", releases[0], "active"),
                ("night", releases[1], "shadow"),
            ):
                http.post(
                    "/api/v1/groups", json={"name": condition, "selector": {"condition": condition}}
                )
                started = http.post(
                    "/api/v1/rollouts",
                    json={"release_id": release, "group": condition, "mode": mode},
                )
                assert started.status_code == 201, started.text
                rollouts.append(started.json()["rollout_id"])
            for rollout_id in rollouts:
                wait_for(
                    lambda r=rollout_id: any(  # type: ignore[misc]
                        d["state"] not in ("planned", "pending")
                        for d in http.get(f"/api/v1/rollouts/{r}").json()["devices"]
                    ),
                    30,
                    f"simulated devices to act on rollout {rollout_id}",
                )
            # v3 fails its smoke test on the first canary: the gate stops it there.
            bad = http.post(
                "/api/v1/rollouts",
                json={
                    "release_id": releases[2],
                    "group": "day",
                    "supersede": True,
                    "waves": ["1", "100%"],
                },
            )
            assert bad.status_code == 201, bad.text
            stopped = wait_for(
                lambda: (lambda r: r if r["state"] != "in_progress" else None)(
                    http.get(f"/api/v1/rollouts/{bad.json()['rollout_id']}").json()
                ),
                30,
                "the canary gate to stop the bad release",
            )
            failed = [d["device_id"] for d in stopped["devices"] if d["state"] == "failed"]
            assert len(failed) == 1, stopped
            views = {view.format(canary=failed[0]): charts for view, charts in VIEWS.items()}
            seed_jobs(http)
            seed_drift(control_plane.settings, releases[0])
            seed_park(control_plane.settings, http.get("/api/v1/devices").json()["items"][0])

            browser = Browser(tmp_path / "chromium-profile")
            try:
                pages = {}
                for view in views:
                    url = f"{control_plane.url}/dashboard/#/{view}?token={control_plane.token}"
                    shot = artefacts / f"{view.replace('/', '-')}.png"
                    pages[view] = browser.open(
                        url,
                        screenshot=shot,
                        values={
                            "rows": "document.querySelectorAll('table.grid tbody tr').length",
                            "waves": "document.querySelectorAll('.wave').length",
                            "failed_gates": FAILED_GATES_JS,
                            "lines": "document.querySelectorAll('svg.plot path.line').length",
                        },
                    )
                # A wrong token in the URL replaces the stored one: the page must ask again.
                refused = browser.open(
                    f"{control_plane.url}/dashboard/#/fleet?token=wrong",
                    values={"login": "!!document.querySelector('form.login')"},
                )
            finally:
                browser.stop()
        finally:
            stop.set()
            sim.join(timeout=15)
    print(f"dashboard screenshots in {artefacts}")
    for view, charts in views.items():
        page = pages[view]
        assert page.errors == [], f"{view}: {page.errors}"
        assert page.status.get("ready") == "1", f"{view} never finished rendering: {page.status}"
        assert page.status.get("errors") == "0", f"{view}: {page.status.get('errorsText')}"
        assert int(page.status.get("charts", "0")) == charts, f"{view}: {page.status}"
        assert page.screenshot is not None and page.screenshot.stat().st_size > 10_000
    assert pages["fleet"].values["rows"] >= DEVICES  # one row per device (plus releases)
    canary = pages[f"device/{failed[0]}"]
    assert canary.values["rows"] >= 1  # its activation_failed event, at least
    assert pages["fleet"].values["lines"] >= 2
    assert pages["rollouts"].values["waves"] >= 4  # all three rollouts show their waves
    assert pages["rollouts"].values["failed_gates"] >= 1  # the stopped canary, unfolded
    assert pages["drift"].values["lines"] >= 3  # fleet, per device, per feature
    assert refused.values["login"] is True
    # The refused API calls are logged by the browser itself; nothing else may go wrong.
    assert [e for e in refused.errors if "status of 401" not in e] == [], refused.errors
