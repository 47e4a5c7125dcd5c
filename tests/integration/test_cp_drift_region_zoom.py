"""A zoomed camera raises drift on its region features, end to end: a park clip written as
MJPG and decoded by OpenCV, the agent's ``RegionAnalyzer`` (background model, crops
classified by ONNX Runtime, tracks) and ``WindowAccumulator`` summarise it in windows,
the control plane stores them (SQLite and PostgreSQL), learns the camera's day baseline
and judges the later windows of the same scene seen through a 1.35x zoom off centre.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.config.drift import DriftSettings
from control_plane.drift import baseline as bl
from control_plane.drift import stats
from control_plane.services.devices import apply_reported
from control_plane.services.telemetry import ingest_window
from control_plane.store.db import create_db_engine, session_scope
from control_plane.testing import register_profiled_release
from edge_agent.capture import CaptureCounters
from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.runtime import ModelRuntime
from edge_agent.telemetry import WindowAccumulator
from protocols import ReportedState, TelemetryWindow
from tests.region_kit import (
    BLUE,
    GREEN,
    RED,
    Thing,
    build_colour_model,
    colour_manifest,
    crossing,
    read_clip,
    write_clip,
)

API = "/api/v1"
FPS = 10.0
WINDOW = 30  # frames a window
BASELINE = 12  # windows the day baseline learns from
RELEASE = "colour-1"


def walkers(n: int) -> list[Thing]:
    """Animals and people crossing the lawn one after another, along two paths."""
    things = []
    for k, start in enumerate(range(0, n, 12)):
        colour = (RED, BLUE, GREEN)[k % 3]
        y, (x0, x1) = (150.0, (30.0, 290.0)) if k % 2 else (200.0, (290.0, 40.0))
        things.append(Thing(colour, (34, 26), crossing(start, start + 30, x0, x1, y)))
    return things


def zoom(image: np.ndarray) -> np.ndarray:
    """The camera zoomed 1.35x about a point left of and below the centre, turned 4°."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((0.35 * w, 0.6 * h), 4.0, 1.35)
    return np.asarray(cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT))


def agent_windows(tmp: Path, windows: int, zoomed_from: int) -> list[dict[str, Any]]:
    """The camera windows the agent publishes for the clip; from window ``zoomed_from`` on,
    through the zoom."""
    n = windows * WINDOW
    model = build_colour_model()
    manifest = colour_manifest(model)
    (tmp / "colour.onnx").write_bytes(model)
    runtime = ModelRuntime(tmp / "colour.onnx", manifest, 1)
    analyzer = RegionAnalyzer(CameraConfig(camera_id="lawn", source="clip.avi", sample_fps=FPS),
                              lambda *a, **kw: None, frozenset(), 0.6)
    acc = WindowAccumulator("lawn", manifest.labels, manifest.reference_profile,
                            mode="regions")
    out = []
    for i, image in enumerate(read_clip(write_clip(tmp / "clip.avi", walkers(n), n, FPS))):
        frame = zoom(image) if i >= zoomed_from * WINDOW else image
        acc.add_crops(analyzer.analyse(frame, i / FPS, runtime), 1.0, 0.0,
                      analyzer.condition_index)
        if (i + 1) % WINDOW == 0:
            window = acc.close("up", CaptureCounters(captured=WINDOW), i / FPS,
                               mode="regions", regions=analyzer.close_window())
            out.append(window.model_dump(mode="json"))
    assert len(out) == windows
    return out


@pytest.fixture(scope="module")
def zoomed(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The agent's windows: the day baseline's, then the zoomed camera's (once for both
    stores)."""
    return agent_windows(tmp_path_factory.mktemp("clip"), BASELINE + 4, zoomed_from=BASELINE)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The same camera's windows with no zoom at all."""
    return agent_windows(tmp_path_factory.mktemp("still"), BASELINE + 4,
                         zoomed_from=BASELINE + 4)


@pytest.fixture
def control_plane(tmp_path: Path, database_url: str) -> Iterator[dict[str, Any]]:
    drift = {"analysis_interval_s": 0, "range_minutes": 600, "alert_windows": 4,
             "alert_drifted_windows": 3, "baseline_windows": BASELINE, "min_samples": 10,
             "baseline_block": 1}
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", database_url=database_url,
                                    drift=drift)
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        engine = create_db_engine(settings.resolved_database_url)
        profile = colour_manifest(build_colour_model()).reference_profile
        for device in ("cam-z", "cam-u"):
            r = client.post(f"{API}/devices", json={"device_id": device, "labels": {}},
                            headers=h)
            assert r.status_code == 201, r.text
        with session_scope(engine) as session:
            register_profiled_release(session, RELEASE, profile)
            for device in ("cam-z", "cam-u"):
                apply_reported(session, ReportedState.model_validate({
                    "device_id": device, "agent_version": "1.0",
                    "active": {"release_id": RELEASE, "model_version": "1",
                               "stage": "healthy", "since": datetime.now(UTC).isoformat()}}))
        yield {"client": client, "h": h, "engine": engine}
        engine.dispose()


def send(cp: dict[str, Any], cameras: list[dict[str, Any]], seq: int, t: datetime,
         device: str = "cam-z") -> None:
    with session_scope(cp["engine"]) as session:
        for i, cam in enumerate(cameras):
            start = t + timedelta(minutes=seq + i)
            window = TelemetryWindow.model_validate({
                "device_id": device, "seq": seq + i, "release_id": RELEASE,
                "window_start": start.isoformat(),
                "window_end": (start + timedelta(minutes=1)).isoformat(),
                "cameras": [cam]})
            assert ingest_window(session, window) == "stored"


def analyse(cp: dict[str, Any]) -> dict[str, Any]:
    r = cp["client"].post(f"{API}/drift/run", json={}, headers=cp["h"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_zoomed_camera_raises_drift_on_its_region_features(
        zoomed: list[dict[str, Any]], control_plane: dict[str, Any]) -> None:
    cams = zoomed
    assert all(sum(c["edge_layout"]) > 0 for c in cams)
    # The zoom moves the whole picture: the background model takes it for a change of light
    # and proposes few regions until it has learnt the new view, so zoomed windows have too
    # few crops to judge; their edges are judged all the same.
    assert any(sum(c["confidence_hist"] or [0]) < 10 for c in cams[BASELINE:])
    t = datetime.now(UTC) - timedelta(hours=1)
    send(control_plane, cams[:BASELINE], 0, t)
    body = analyse(control_plane)
    assert body["drifted_devices"][RELEASE] == []
    r = control_plane["client"].get(f"{API}/drift/baselines", params={"active": True},
                                    headers=control_plane["h"])
    [base] = r.json()["items"]
    one = control_plane["client"].get(f"{API}/drift/baselines/{base['id']}",
                                      headers=control_plane["h"]).json()
    assert {"regions.width", "regions.per_frame", "scene.edges"} <= set(one["levels"])

    send(control_plane, cams[BASELINE:], BASELINE, t)
    body = analyse(control_plane)
    assert body["drifted_devices"][RELEASE] == ["cam-z"]
    verdict = body["fleet_reports"][0]["statistics"]["verdict"]
    assert verdict["drifted"] and verdict["reference"] == "baseline"
    assert verdict["feature"].startswith(("regions.", "scene.")), verdict
    assert verdict["statistic"] > verdict["level"] > 0
    r = control_plane["client"].get(f"{API}/alerts", params={"kind": "drift"},
                                    headers=control_plane["h"])
    [alert] = [a for a in r.json()["items"] if a["state"] != "resolved"]
    assert verdict["feature"] in alert["message"]


def _device_camera(cp: dict[str, Any], device: str) -> dict[str, Any]:
    """The camera's verdict against its baseline in the device's latest report."""
    r = cp["client"].get(f"{API}/drift", params={"device": device}, headers=cp["h"])
    latest = r.json()["items"][0]["id"]
    report = cp["client"].get(f"{API}/drift/{latest}", headers=cp["h"]).json()
    [camera] = report["statistics"]["baseline"]["cameras"]
    return dict(camera)


def test_a_moved_view_alarms_on_its_background_and_an_unchanged_one_does_not(
        zoomed: list[dict[str, Any]], unchanged: list[dict[str, Any]],
        control_plane: dict[str, Any]) -> None:
    # Both cameras learn their day baseline from the same view (the zoomed clip's first
    # windows are the unchanged clip's); then one camera's view is zoomed and turned.
    assert all(sum(c["background_edges"]) > 0 for c in zoomed + unchanged)
    t = datetime.now(UTC) - timedelta(hours=1)
    send(control_plane, zoomed[:BASELINE], 0, t, "cam-z")
    send(control_plane, unchanged[:BASELINE], 0, t, "cam-u")
    assert analyse(control_plane)["drifted_devices"][RELEASE] == []
    r = control_plane["client"].get(f"{API}/drift/baselines", params={"active": True},
                                    headers=control_plane["h"])
    stored = {}
    for base in r.json()["items"]:
        one = control_plane["client"].get(f"{API}/drift/baselines/{base['id']}",
                                          headers=control_plane["h"]).json()
        assert "scene.background" in one["levels"]
        stored[base["device_id"]] = one
    send(control_plane, zoomed[BASELINE:], BASELINE, t, "cam-z")
    send(control_plane, unchanged[BASELINE:], BASELINE, t, "cam-u")
    body = analyse(control_plane)
    assert body["drifted_devices"][RELEASE] == ["cam-z"]
    moved, still = _device_camera(control_plane, "cam-z"), _device_camera(control_plane, "cam-u")
    assert moved["holds"] and moved["driver"]["statistic"] > moved["driver"]["level"] > 0
    assert not still["holds"] and still["drifted"] == 0, still
    # The background alone sees the move in every zoomed window (the driver is whichever
    # feature is furthest past its level), and none in the unchanged camera's.
    for device, cams, exceeded in (("cam-z", zoomed, True), ("cam-u", unchanged, False)):
        ratios = _background_ratios(stored[device], cams[BASELINE:], moved["alpha"])
        assert all((r > 1.0) is exceeded for r in ratios), (device, ratios)


def _background_ratios(baseline: dict[str, Any], cams: list[dict[str, Any]], alpha: float
                       ) -> list[float]:
    """``scene.background``'s PSI over its level for each window, against a stored
    baseline (its counts and fitted level, as the API gives them)."""
    ref = np.asarray(baseline["counts"]["scene.background"], np.float64)
    [level] = bl.levels_of({"b": baseline["levels"]["scene.background"]}).values()
    out = []
    for cam in cams:
        cur = np.asarray(cam["background_edges"], np.float64)
        limit = level.alarm(float(ref.sum()), float(cur.sum()), alpha,
                            DriftSettings().default_threshold.min_psi)
        out.append(stats.psi(ref, cur) / limit)
    return out


def test_an_older_agent_without_background_edges_is_judged_on_the_other_features(
        zoomed: list[dict[str, Any]], control_plane: dict[str, Any]) -> None:
    # Windows as an agent older than ``background_edges`` sends them: stored, a baseline
    # learned without that feature, and the zoom still seen on the scene's other edges.
    older = [{k: v for k, v in c.items() if k != "background_edges"} for c in zoomed]
    t = datetime.now(UTC) - timedelta(hours=1)
    send(control_plane, older[:BASELINE], 0, t)
    analyse(control_plane)
    r = control_plane["client"].get(f"{API}/drift/baselines", params={"active": True},
                                    headers=control_plane["h"])
    [base] = r.json()["items"]
    one = control_plane["client"].get(f"{API}/drift/baselines/{base['id']}",
                                      headers=control_plane["h"]).json()
    assert "scene.background" not in one["levels"] and "scene.edges" in one["levels"]
    send(control_plane, older[BASELINE:], BASELINE, t)
    body = analyse(control_plane)
    assert body["drifted_devices"][RELEASE] == ["cam-z"]
    assert _device_camera(control_plane, "cam-z")["driver"]["feature"] != "scene.background"
