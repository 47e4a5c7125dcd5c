"""An operator acts from the dashboard, in a real headless Chromium against a running control
plane (uvicorn, SQLite, a real Mosquitto): each click must change what the API says, and a
read-only token must see no button while the API refuses the same call.

Covered: the first-run checklist on an empty fleet; pause and abort a rollout; acknowledge
an alert; label a sample with its image shown; point an alias at a version.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from control_plane.services import alerts
from control_plane.store import db
from control_plane.store.models import DriftBaseline
from control_plane.testing import registration
from tests.agent_kit import wait_until
from tests.browser_kit import SAFE_DIALOGS, Browser
from tests.conftest import Mosquitto
from tests.fleet_kit import ControlPlane, serve_control_plane

pytestmark = pytest.mark.slow
Run = Callable[[str], Any]


@pytest.fixture
def control_plane(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    with serve_control_plane(tmp_path / "cp", mosquitto.url) as cp:
        yield cp


def _versions(http: httpx.Client) -> list[str]:
    releases = []
    for version in (1, 2):
        blob = f"model {version}".encode()
        sha = http.post("/api/v1/artifacts", content=blob).json()["sha256"]
        spec = registration("petnet", [(sha, len(blob), "int8")], metrics={"accuracy": 0.9})
        r = http.post("/api/v1/models/petnet/versions", json=spec.model_dump(mode="json"))
        assert r.status_code == 201, r.text
        r = http.post("/api/v1/releases", json={"model_name": "petnet", "version": str(version)})
        assert r.status_code == 201, r.text
        releases.append(r.json()["release_id"])
    return releases


def _sample(cp: ControlPlane, device_token: str) -> int:
    image = np.full((96, 96, 3), 90, np.uint8)
    cv2.circle(image, (48, 48), 30, (20, 120, 200), -1)
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    body = {
        "camera_id": "gate", "predicted_label": "cat", "confidence": 0.55,
        "predictions": {"cat": 0.55, "dog": 0.45}, "captured_at": datetime.now(UTC).isoformat(),
        "image_jpeg_b64": base64.b64encode(jpeg.tobytes()).decode(),
    }
    r = httpx.post(f"{cp.url}/api/v1/samples", json=body,
                   headers={"Authorization": f"Bearer {device_token}"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _alert(cp: ControlPlane) -> int:
    engine = db.create_db_engine(cp.settings.resolved_database_url)
    try:
        with db.session_scope(engine) as session:
            return int(alerts.raise_alert(session, "drift", "warning", "night camera drifted",
                                          device_id="park-1").id or 0)
    finally:
        engine.dispose()


def _baseline(cp: ControlPlane, release_id: str) -> int:
    """A learned night baseline of park-1's gate camera, as the drift analysis stores it."""
    engine = db.create_db_engine(cp.settings.resolved_database_url)
    now = datetime.now(UTC)
    try:
        with db.session_scope(engine) as session:
            row = DriftBaseline(device_id="park-1", camera_id="gate", condition="night",
                                release_id=release_id, window_count=60, sample_count=2400,
                                counts={}, levels={}, learned_from=now, learned_to=now)
            session.add(row)
            session.flush()
            return int(row.id or 0)
    finally:
        engine.dispose()


def _click(run: Run, selector: str) -> None:
    found = run(f"(() => {{ {SAFE_DIALOGS} const b = document.querySelector({selector!r});"
                " if (!b) return false; b.click(); return true; })()")
    assert found, f"no {selector} on the page"


def test_an_operator_acts_from_the_dashboard(control_plane: ControlPlane, browser: Browser) -> None:
    cp = control_plane
    page = f"{cp.url}/dashboard/#/{{view}}?token={cp.token}"
    first = browser.open(page.format(view="fleet"), values={
        "steps": "document.querySelectorAll('.checklist li').length",
        "copy": "document.querySelector('[data-copy]')?.dataset.copy"})
    assert first.errors == [] and first.values["steps"] == 5, first
    assert first.values["copy"].startswith("parkwatch train")

    with cp.http() as http:
        releases = _versions(http)
        tokens = {}
        for device_id in ("park-1", "park-2"):
            r = http.post("/api/v1/devices", json={"device_id": device_id})
            tokens[device_id] = r.json()["token"]
        rollout = http.post("/api/v1/rollouts", json={
            "release_id": releases[0], "devices": ["park-1", "park-2"], "waves": ["1", "100%"]})
        assert rollout.status_code == 201, rollout.text
        rollout_id = rollout.json()["rollout_id"]
        sample_id = _sample(cp, tokens["park-1"])
        alert_id = _alert(cp)
        baseline_id = _baseline(cp, releases[0])
        read = http.post("/api/v1/tokens", json={"name": "viewer", "scopes": ["read"]})
        assert read.status_code == 201, read.text
        read_token = read.json()["token"]

        def state() -> str:
            return str(http.get(f"/api/v1/rollouts/{rollout_id}").json()["state"])

        def pause_then_abort(run: Run) -> None:
            _click(run, "[data-action=rollout-pause]")
            wait_until(lambda: state() == "paused", 15, "the rollout to pause")
            wait_until(lambda: run("!!document.querySelector('[data-action=rollout-abort]')"),
                       20, "the page to show the paused rollout's buttons")
            _click(run, "[data-action=rollout-abort]")
            wait_until(lambda: state() == "aborted", 15, "the rollout to abort")

        done = browser.open(page.format(view="rollouts"), act=pause_then_abort)
        assert done.errors == [], done.errors

        def acknowledge(run: Run) -> None:
            _click(run, "[data-action=alert-ack]")
            wait_until(lambda: http.get(f"/api/v1/alerts/{alert_id}").json()["state"]
                       == "acknowledged", 15, "the alert to be acknowledged")

        assert browser.open(page.format(view="alerts"), act=acknowledge).errors == []

        def label(run: Run) -> None:
            wait_until(lambda: run("document.querySelector('.sample-image img')?.naturalWidth"),
                       15, "the sample's image to load")
            _click(run, "[data-action=label-dog]")
            wait_until(lambda: http.get(f"/api/v1/samples/{sample_id}").json()["label"] == "dog",
                       15, "the sample to be labelled")

        assert browser.open(page.format(view="label"), act=label).errors == []

        def promote(run: Run) -> None:
            _click(run, "[data-action=promote-champion]")
            wait_until(lambda: http.get("/api/v1/models/petnet/aliases/champion").status_code
                       == 200, 15, "the champion alias")

        assert browser.open(page.format(view="registry"), act=promote).errors == []

        def reset_baseline(run: Run) -> None:
            _click(run, "[data-action=baseline-reset]")
            wait_until(lambda: http.get(f"/api/v1/drift/baselines/{baseline_id}").json()[
                "state"] == "retired", 15, "the baseline to be retired")

        assert browser.open(page.format(view="device/park-1"), act=reset_baseline).errors == []
        retired = http.get(f"/api/v1/drift/baselines/{baseline_id}").json()
        assert retired["retired_by"] and retired["retired_reason"] == "from the browser test"
        champion = http.get("/api/v1/models/petnet/aliases/champion").json()
        assert str(champion["version"]) == "2"  # the newest row of the table is first
        audit = http.get("/api/v1/audit", params={"limit": 50}).json()["items"]
        audited = {"rollout.pause", "rollout.abort", "alert.acknowledged", "sample.labelled",
                   "alias.set", "drift.baseline.reset"}
        assert audited <= {a["action"] for a in audit}  # each click is audited

    viewer = f"{cp.url}/dashboard/#/{{view}}?token={read_token}"
    for view in ("rollouts", "alerts", "label", "registry", "device/park-1"):
        seen = browser.open(viewer.format(view=view), values={
            "buttons": "document.querySelectorAll('button.action').length"})
        assert seen.errors == [] and seen.values["buttons"] == 0, (view, seen)
    refused = httpx.post(f"{cp.url}/api/v1/rollouts/{rollout_id}/resume",
                         headers={"Authorization": f"Bearer {read_token}"})
    assert refused.status_code == 403, refused.text
