"""Production baselines per camera × condition, on SQLite and PostgreSQL through the API: learned
once the release is healthy, nightfall and rain are conditions (no alert), a camera that changes
raises the alert naming its camera, condition and feature with that feature's own level,
skew from the training profile is shown but not alerted, and an operator reset retires a
baseline so that the next version is learned from later windows."""

from __future__ import annotations

import base64
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
from control_plane.drift import synthetic
from control_plane.services.devices import apply_reported
from control_plane.services.telemetry import ingest_window
from control_plane.store.db import create_db_engine, session_scope
from control_plane.testing import registration
from protocols import ReportedState, TelemetryWindow

API = "/api/v1"
BLOB = bytes(range(256)) * 8
DEVICES = ["cam-a", "cam-b"]
BASELINE_WINDOWS = 20


@pytest.fixture
def park(tmp_path: Path, database_url: str) -> Iterator[dict[str, Any]]:
    drift = {"analysis_interval_s": 0, "range_minutes": 600, "alert_windows": 4,
             "alert_drifted_windows": 3, "alert_min_devices": 1,
             "baseline_windows": BASELINE_WINDOWS}
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp",
                                    database_url=database_url, drift=drift,
                                    sample_uploads_per_hour=1000)
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        sha = client.post(f"{API}/artifacts", content=BLOB, headers=h).json()["sha256"]
        profile = synthetic.profile()
        spec = registration("petnet", [(sha, len(BLOB), "fp32")], reference_profile=profile)
        r = client.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"),
                        headers=h)
        assert r.status_code == 201, r.text
        release = client.post(f"{API}/releases", json={"model_name": "petnet"},
                              headers=h).json()["release_id"]
        engine = create_db_engine(settings.resolved_database_url)
        now = datetime.now(UTC)
        tokens = {}
        for device in DEVICES:
            r = client.post(f"{API}/devices", json={"device_id": device, "labels": {}}, headers=h)
            assert r.status_code == 201, r.text
            tokens[device] = {"Authorization": f"Bearer {r.json()['token']}"}
            with session_scope(engine) as session:
                apply_reported(session, ReportedState.model_validate({
                    "device_id": device, "agent_version": "1.0",
                    "active": {"release_id": release, "model_version": "petnet:1",
                               "stage": "healthy", "since": now.isoformat()}}))
        yield {"client": client, "h": h, "engine": engine, "profile": profile,
               "release": release, "seq": dict.fromkeys(DEVICES, 0), "tokens": tokens,
               "rng": np.random.default_rng(3), "t": now - timedelta(minutes=300)}
        engine.dispose()


def stream(park: dict[str, Any], cams: dict[str, tuple[str, float]], windows: int,
           frames: int = 150, regions: bool = False) -> None:
    """``windows`` one-minute windows per device: (condition, shift) each (``regions``:
    with a regions-mode agent's region telemetry)."""
    with session_scope(park["engine"]) as session:
        for _ in range(windows):
            park["t"] += timedelta(minutes=1)
            for device, (condition, shift) in cams.items():
                park["seq"][device] += 1
                payload = synthetic.window(
                    park["profile"], device, park["seq"][device], rng=park["rng"], shift=shift,
                    release_id=park["release"], start=park["t"], frames=frames,
                    condition=condition)
                if regions:
                    payload["cameras"][0] |= synthetic.regions(park["rng"], frames)
                assert ingest_window(session, TelemetryWindow.model_validate(payload)) == "stored"


def run(park: dict[str, Any]) -> dict[str, Any]:
    r = park["client"].post(f"{API}/drift/run", json={}, headers=park["h"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def device_reports(park: dict[str, Any]) -> dict[str, dict[str, Any]]:
    r = park["client"].get(f"{API}/drift", params={"limit": 10}, headers=park["h"])
    latest: dict[str, dict[str, Any]] = {}
    for rep in r.json()["items"]:
        if rep["device_id"]:
            latest.setdefault(rep["device_id"], rep)
    return latest


def baselines(park: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    r = park["client"].get(f"{API}/drift/baselines", params=params, headers=park["h"])
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_baselines_per_camera_and_condition_nightfall_and_change(park: dict[str, Any]) -> None:
    # cam-b looks unlike the training data from its first window (skew), by day.
    day = {"cam-a": ("day", 0.0), "cam-b": ("day", 1.0)}
    stream(park, day, BASELINE_WINDOWS)
    body = run(park)
    assert body["drifted_devices"][park["release"]] == []
    learned = baselines(park, active=True)
    assert sorted((b["device_id"], b["condition"], b["version"]) for b in learned) == [
        ("cam-a", "day", 1), ("cam-b", "day", 1)]
    assert all(b["window_count"] == BASELINE_WINDOWS for b in learned)
    reports = device_reports(park)
    assert reports["cam-b"]["statistics"]["drifted"]  # skew: shown ...
    assert not reports["cam-b"]["drifted"]  # ... not alerted by default
    assert reports["cam-b"]["statistics"]["verdict"]["reference"] == "baseline"

    # Nightfall on cam-a, rain on cam-b: a condition with no baseline yet is learning,
    # not drift.
    stream(park, {"cam-a": ("night", 1.5), "cam-b": ("rain", 1.5)}, 4)
    body = run(park)
    assert body["drifted_devices"][park["release"]] == []
    reports = device_reports(park)
    for device, condition in [("cam-a", "night"), ("cam-b", "rain")]:
        cams = reports[device]["statistics"]["baseline"]["cameras"]
        assert [(c["condition"], c["state"]) for c in cams] == [(condition, "learning")]

    # cam-b's view changes a lot by day: the alert names it, its condition and a feature
    # with its statistic above that feature's own level.
    stream(park, {"cam-a": ("night", 1.5), "cam-b": ("day", 4.0)}, 4)
    body = run(park)
    assert body["drifted_devices"][park["release"]] == ["cam-b"]
    verdict = body["fleet_reports"][0]["statistics"]["verdict"]
    assert verdict["drifted"] and verdict["device_id"] == "cam-b"
    assert verdict["reference"] == "baseline" and verdict["condition"] == "day"
    assert verdict["statistic"] > verdict["level"] > 0
    r = park["client"].get(f"{API}/alerts", params={"kind": "drift"}, headers=park["h"])
    [alert] = [a for a in r.json()["items"] if a["state"] != "resolved"]
    assert "cam-b" in alert["message"] and verdict["feature"] in alert["message"]


def test_an_operator_reset_retires_and_the_next_version_is_learned(
    park: dict[str, Any],
) -> None:
    day = {"cam-a": ("day", 0.0), "cam-b": ("day", 0.0)}
    stream(park, day, BASELINE_WINDOWS)
    run(park)
    r = park["client"].post(f"{API}/drift/baselines/reset", json={}, headers=park["h"])
    assert r.status_code == 422 and "device_id or release_id" in r.text
    r = park["client"].post(f"{API}/drift/baselines/reset",
                            json={"device_id": "cam-b", "reason": "camera moved"},
                            headers=park["h"])
    assert r.status_code == 200, r.text
    [retired] = r.json()["retired"]
    # The camera moved: its new view is learned from windows after the reset, not judged
    # against the old baseline.
    stream(park, {"cam-b": ("day", 2.0)}, BASELINE_WINDOWS)
    body = run(park)
    assert body["drifted_devices"][park["release"]] == []
    rows = baselines(park, device="cam-b")
    assert [(b["version"], b["state"]) for b in rows] == [(2, "active"), (1, "retired")]
    assert rows[1]["id"] == retired and rows[1]["retired_reason"] == "camera moved"
    one = park["client"].get(f"{API}/drift/baselines/{rows[0]['id']}", headers=park["h"]).json()
    assert set(one["levels"]) >= {"confidence", "classes", "input.brightness"}
    assert sum(one["counts"]["confidence"]) == one["sample_count"]


def test_a_failed_fit_is_retried_on_later_windows_not_the_first_ones(
        park: dict[str, Any]) -> None:
    # A quiet start: windows with too few frames to judge, so the first fit fails ...
    day = {"cam-a": ("day", 0.0)}
    stream(park, day, BASELINE_WINDOWS, frames=5)
    run(park)
    assert baselines(park, device="cam-a") == []
    # ... then the camera gets busy: the baseline comes from these later windows (it
    # used to retry the same first, quiet windows until far more had arrived).
    stream(park, day, BASELINE_WINDOWS)
    run(park)
    learned = baselines(park, device="cam-a", active=True)
    assert [(b["condition"], b["window_count"]) for b in learned] == [("day", BASELINE_WINDOWS)]
    assert learned[0]["unfitted"] == [] and learned[0]["features"] > 1


def test_a_quiet_cameras_baseline_names_the_features_it_does_not_judge(
        park: dict[str, Any]) -> None:
    # Only 5 of its windows have enough crops: too few (baseline.MIN_REPLAYS) to fit
    # a level for its crop features, so they are not judged against this baseline; its
    # region telemetry's features are (every window has them).
    stream(park, {"cam-a": ("day", 0.0)}, BASELINE_WINDOWS - 5, frames=5, regions=True)
    stream(park, {"cam-a": ("day", 0.0)}, 5, regions=True)
    run(park)
    [learned] = baselines(park, device="cam-a", active=True)
    assert learned["window_count"] == BASELINE_WINDOWS
    assert "confidence" in learned["unfitted"]
    assert 2 * len(learned["unfitted"]) > learned["features"]
    assert set(learned["unfitted"]).isdisjoint(learned["levels"])
    # ... and says why, with the fix.
    assert learned["unfitted_why"].startswith(
        f"{len(learned['unfitted'])} of its {learned['features']} features have no level: "
        "fewer than 8 of its windows had enough samples")
    assert learned["unfitted_why"].endswith(
        "`parkwatch drift reset-baseline --device cam-a --camera gate --condition day`")


def label(park: dict[str, Any], device: str, at: datetime, predicted: str, truth: str) -> None:
    """One sample uploaded by the device (its token) and labelled by an operator."""
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), 90, np.uint8))
    assert ok
    body = {"camera_id": "gate", "release_id": park["release"], "predicted_label": predicted,
            "confidence": 0.5, "captured_at": at.isoformat(),
            "image_jpeg_b64": base64.b64encode(data.tobytes()).decode()}
    r = park["client"].post(f"{API}/samples", json=body, headers=park["tokens"][device])
    assert r.status_code == 201, r.text
    r = park["client"].patch(f"{API}/samples/{r.json()['id']}",
                             json={"status": "labelled", "label": truth}, headers=park["h"])
    assert r.status_code == 200, r.text


def test_realized_accuracy_per_camera_and_condition_raises_the_accuracy_alert(
    park: dict[str, Any],
) -> None:
    """Labels on cam-a by night: 12 of 30 wrong, so its whole 95 % interval is below the
    held-out 0.93 - 0.05; cam-b by day: 29 of 30 right. The estimate cannot see it (no
    shift in confidence); the labels raise the accuracy alert, naming cam-a at night."""
    start = park["t"]
    stream(park, {"cam-a": ("night", 0.0), "cam-b": ("day", 0.0)}, 30)
    for i in range(30):
        at = start + timedelta(minutes=i + 1, seconds=30)
        label(park, "cam-a", at, "dog", "cat" if i < 12 else "dog")
        label(park, "cam-b", at, "dog", "cat" if i < 1 else "dog")
    body = run(park)
    stats = body["fleet_reports"][0]["statistics"]
    assert not stats["accuracy_dropped"]  # the label-free estimate sees nothing
    r = park["client"].get(f"{API}/drift/accuracy", params={"release": park["release"]},
                           headers=park["h"])
    assert r.status_code == 200, r.text
    report = r.json()
    rows = {(c["device_id"], c["condition"]): c for c in report["cameras"]}
    assert set(rows) == {("cam-a", "night"), ("cam-b", "day")}
    night = rows[("cam-a", "night")]
    assert (night["labelled"], night["correct"]) == (30, 18) and night["accuracy"] == 0.6
    assert night["expected"] == 0.5  # the samples' own confidence, beside what labels found
    assert night["ci_low"] < 0.6 < night["ci_high"] < 0.93 - 0.05
    assert night["estimated_accuracy"] is not None  # beside it: the estimate, from telemetry
    assert rows[("cam-b", "day")]["ci_high"] > 0.93 - 0.05
    assert [(d["device_id"], d["condition"]) for d in report["dropped"]] == [("cam-a", "night")]
    r = park["client"].get(f"{API}/alerts", params={"kind": "accuracy"}, headers=park["h"])
    [alert] = [a for a in r.json()["items"] if a["state"] != "resolved"]
    assert "cam-a/gate (night)" in alert["message"] and "30 labels" in alert["message"]


def test_a_fit_that_judges_no_feature_is_not_stored_and_later_windows_make_one(
        park: dict[str, Any]) -> None:
    # 5 busy windows and no region telemetry: not one feature gets a level. Stored, such
    # a baseline judged nothing and took the camera × condition off the hour check.
    stream(park, {"cam-a": ("day", 0.0)}, BASELINE_WINDOWS - 5, frames=5)
    stream(park, {"cam-a": ("day", 0.0)}, 5)
    run(park)
    assert baselines(park, device="cam-a") == []
    r = park["client"].get(f"{API}/drift/baselines/learning", headers=park["h"])
    [why] = r.json()["items"]
    assert (why["reason"], why["busy_windows"]) == ("too_few_busy_windows", 5)
    assert "8 needed to fit a level: it fits by itself once animals come by" in why["message"]
    stream(park, {"cam-a": ("day", 0.0)}, BASELINE_WINDOWS)
    run(park)
    [learned] = baselines(park, device="cam-a", active=True)
    assert learned["unfitted"] == []
    r = park["client"].get(f"{API}/drift/baselines/learning", headers=park["h"])
    assert r.json()["items"] == []
