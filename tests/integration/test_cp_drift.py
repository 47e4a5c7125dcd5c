"""Drift analysis on the real control plane: windows in a real store (SQLite, PostgreSQL),
reports and K-of-N / M-device alerts through the API, ``/metrics`` and a real webhook."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.drift import synthetic
from control_plane.services.telemetry import ingest_window
from control_plane.store.db import create_db_engine, session_scope
from control_plane.testing import registration
from protocols import TelemetryWindow

API = "/api/v1"
BLOB = bytes(range(256)) * 8
DEVICES = ["cam-a", "cam-b", "cam-c"]


class Webhook:
    """A real HTTP server that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [b["event"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLite unless a test asks for PostgreSQL (indirect parametrisation)."""
    if getattr(request, "param", "sqlite") == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'cp.db'}"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def loop(tmp_path: Path, database_url: str, webhook: Webhook) -> Iterator[dict[str, Any]]:
    # These tests drive the training-profile path (skew), so they switch its alert on.
    drift = {"analysis_interval_s": 0, "range_minutes": 10, "alert_windows": 4,
             "alert_on_skew": True,
             "alert_drifted_windows": 3, "alert_min_devices": 2, "webhook_url": webhook.url}
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", database_url=database_url,
                                    drift=drift)
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        sha = client.post(f"{API}/artifacts", content=BLOB, headers=h).json()["sha256"]
        profile = synthetic.profile()
        spec = registration("petnet", [(sha, len(BLOB), "fp32")], reference_profile=profile)
        r = client.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"),
                        headers=h)
        assert r.status_code == 201, r.text
        r = client.post(f"{API}/releases", json={"model_name": "petnet"}, headers=h)
        assert r.status_code == 201, r.text
        release = r.json()["release_id"]
        for device in DEVICES:
            r = client.post(f"{API}/devices", json={"device_id": device, "labels": {}}, headers=h)
            assert r.status_code == 201, r.text
        engine = create_db_engine(settings.resolved_database_url)
        yield {"client": client, "h": h, "engine": engine, "profile": profile,
               "release": release,
               "seq": dict.fromkeys(DEVICES, 0), "rng": np.random.default_rng(7)}
        engine.dispose()


def stream(
    loop: dict[str, Any], shifts: dict[str, float], windows: int, release: str | None = None
) -> None:
    """``windows`` one-minute windows per device, ending now, with each device's shift."""
    now = datetime.now(UTC)
    with session_scope(loop["engine"]) as session:
        for i in range(windows):
            start = now - timedelta(minutes=windows - i)
            for device, shift in shifts.items():
                loop["seq"][device] += 1
                payload = synthetic.window(
                    loop["profile"], device, loop["seq"][device], rng=loop["rng"], shift=shift,
                    release_id=release or loop["release"], start=start, frames=150)
                assert ingest_window(session, TelemetryWindow.model_validate(payload)) == "stored"


def run(loop: dict[str, Any]) -> dict[str, Any]:
    r = loop["client"].post(f"{API}/drift/run", json={}, headers=loop["h"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def open_alerts(loop: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    r = loop["client"].get(f"{API}/alerts", params={"kind": kind}, headers=loop["h"])
    return [a for a in r.json()["items"] if a["state"] != "resolved"]


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_drift_alert_opens_on_m_devices_dedups_and_resolves(
    loop: dict[str, Any], webhook: Webhook
) -> None:
    day = dict.fromkeys(DEVICES, 0.0)
    stream(loop, day, 4)
    body = run(loop)
    fleet = body["fleet_reports"][0]
    assert body["device_reports"] == 3 and not fleet["drifted"]
    assert fleet["statistics"]["drifted_devices"] == [] and open_alerts(loop, "drift") == []
    assert fleet["window_count"] == 12 and fleet["sample_count"] == 12 * 150

    # Night on one device only: below M=2, no alert.
    stream(loop, {**day, "cam-a": 1.5}, 4)
    body = run(loop)
    assert body["drifted_devices"][loop["release"]] == ["cam-a"]
    assert open_alerts(loop, "drift") == []

    # Night on two devices for 4 windows: K=3 of N=4 on M=2 devices -> one alert.
    stream(loop, {**day, "cam-a": 1.5, "cam-b": 1.5}, 4)
    body = run(loop)
    assert body["drifted_devices"][loop["release"]] == ["cam-a", "cam-b"]
    assert len(body["alerts_opened"]) >= 1
    fleet = body["fleet_reports"][0]
    assert fleet["drifted"]
    stats = fleet["statistics"]
    assert "input.brightness" in stats["drifted_features"]
    bright = stats["features"]["input.brightness"]
    assert bright["psi"] > bright["psi_alarm"] > 0 and bright["js"] > 0 and bright["ks"] > 0
    alerts = open_alerts(loop, "drift")
    assert len(alerts) == 1 and alerts[0]["detail"]["devices"] == ["cam-a", "cam-b"]
    assert webhook.events().count("alert.opened") >= 1

    # Still drifting: the same alert is updated, not duplicated; no new webhook call.
    calls = len(webhook.bodies)
    stream(loop, {**day, "cam-a": 1.5, "cam-b": 1.5}, 1)
    run(loop)
    assert [a["id"] for a in open_alerts(loop, "drift")] == [alerts[0]["id"]]
    assert len(webhook.bodies) == calls
    metrics = loop["client"].get("/metrics").text
    assert f'parkwatch_cp_drift_devices{{release="{loop["release"]}"}} 2.0' in metrics
    assert "parkwatch_cp_drift_psi_alarm" in metrics

    # Day again: the latest windows are clean, the alert resolves by itself.
    stream(loop, day, 4)
    body = run(loop)
    assert alerts[0]["id"] in body["alerts_resolved"]
    assert open_alerts(loop, "drift") == []
    assert webhook.events()[-1] == "alert.resolved" or "alert.resolved" in webhook.events()
    r = loop["client"].get(f"{API}/alerts/{alerts[0]['id']}", headers=loop["h"])
    assert r.json()["state"] == "resolved" and r.json()["updated_by"] == "drift-analysis"


def test_drifting_devices_moved_to_a_new_release_resolve_the_old_alert(
    loop: dict[str, Any],
) -> None:
    """After a rollout away from the drifting release, its old windows (still in the
    range) no longer hold its alert open; the new release is judged on its own windows."""
    night = {"cam-a": 1.5, "cam-b": 1.5, "cam-c": 0.0}
    stream(loop, night, 4)
    run(loop)
    [alert] = open_alerts(loop, "drift")
    r = loop["client"].post(f"{API}/releases", json={"model_name": "petnet"}, headers=loop["h"])
    assert r.status_code == 201, r.text
    new = r.json()["release_id"]
    stream(loop, {"cam-a": 0.0, "cam-b": 0.0}, 2, release=new)  # cam-c stays on the old one
    body = run(loop)
    assert alert["id"] in body["alerts_resolved"] and open_alerts(loop, "drift") == []
    assert body["drifted_devices"] == {loop["release"]: [], new: []}
    r = loop["client"].get(f"{API}/drift", params={"release": loop["release"], "limit": 10},
                           headers=loop["h"])
    latest = {}
    for rep in r.json()["items"]:
        latest.setdefault(rep["device_id"], rep)
    recent = latest["cam-a"]["statistics"]["recent"]
    assert recent["holds"] and recent["moved_on"]  # reported, no longer counted
    assert not latest["cam-c"]["statistics"]["recent"]["moved_on"]


def test_accuracy_alert_from_estimated_accuracy(loop: dict[str, Any]) -> None:
    stream(loop, dict.fromkeys(DEVICES, 2.5), 3)
    body = run(loop)
    stats = body["fleet_reports"][0]["statistics"]
    assert stats["accuracy_drop"] > 0.05 and stats["accuracy_dropped"]
    assert len(open_alerts(loop, "accuracy")) == 1


def test_windows_of_an_unknown_release_or_other_bins_are_skipped(loop: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    with session_scope(loop["engine"]) as session:
        bad = synthetic.window(loop["profile"], "cam-a", 900, rng=loop["rng"],
                               release_id=loop["release"], start=now - timedelta(minutes=2))
        bad["cameras"][0]["confidence_hist"] = [1, 2, 3]  # not the profile's 20 bins
        ingest_window(session, TelemetryWindow.model_validate(bad))
        other = synthetic.window(loop["profile"], "cam-b", 901, rng=loop["rng"],
                                 release_id="rel-unknown", start=now - timedelta(minutes=2))
        ingest_window(session, TelemetryWindow.model_validate(other))
    body = run(loop)
    assert body["skipped_releases"] == ["rel-unknown"]
    stats = body["fleet_reports"][0]["statistics"]
    assert stats["mismatched_windows"] == 1 and stats["samples"] == 0 and not stats["judged"]


def test_on_demand_analysis_needs_the_operate_scope(loop: dict[str, Any]) -> None:
    r = loop["client"].post(f"{API}/drift/run", json={})
    assert r.status_code == 401
    r = loop["client"].post(f"{API}/drift/run", json={"range_minutes": 0}, headers=loop["h"])
    assert r.status_code == 422 and "range_minutes" in r.json()["detail"]


def test_the_server_computes_reports_periodically(tmp_path: Path) -> None:
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp",
                                    drift={"analysis_interval_s": 0.3, "range_minutes": 10})
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        sha = client.post(f"{API}/artifacts", content=BLOB, headers=h).json()["sha256"]
        profile = synthetic.profile()
        spec = registration("petnet", [(sha, len(BLOB), "fp32")], reference_profile=profile)
        client.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"),
                    headers=h)
        release = client.post(f"{API}/releases", json={"model_name": "petnet"},
                              headers=h).json()["release_id"]
        client.post(f"{API}/devices", json={"device_id": "cam-a", "labels": {}}, headers=h)
        engine = create_db_engine(settings.resolved_database_url)
        with session_scope(engine) as session:
            payload = synthetic.window(profile, "cam-a", 1, rng=np.random.default_rng(1),
                                       release_id=release,
                                       start=datetime.now(UTC) - timedelta(minutes=2))
            ingest_window(session, TelemetryWindow.model_validate(payload))
        engine.dispose()
        deadline = time.monotonic() + 20
        reports: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(reports) < 2:
            reports = client.get(f"{API}/drift", headers=h).json()["items"]
            time.sleep(0.2)
        assert {r["device_id"] for r in reports} >= {"cam-a", None}  # device and fleet
        assert all(r["release_id"] == release for r in reports)


def test_a_webhook_that_is_down_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    from control_plane.schemas import AlertPublic
    from control_plane.services.alerts import AlertChange, notify_webhook
    from tests.conftest import free_port

    now = datetime.now(UTC)
    alert = AlertPublic(id=1, kind="drift", severity="warning", state="open", message="m",
                        device_id=None, release_id="r", drift_report_id=None, detail={},
                        created_at=now, updated_at=now, updated_by=None)
    changes = [AlertChange("opened", alert), AlertChange("updated", alert)]
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    assert notify_webhook(url, changes, timeout_s=2.0) == 0
    assert "alert webhook failed" in caplog.text
    assert notify_webhook(None, changes, timeout_s=2.0) == 0


def _new_release(loop: dict[str, Any], model: str = "petnet") -> str:
    r = loop["client"].post(f"{API}/releases", json={"model_name": model}, headers=loop["h"])
    assert r.status_code == 201, r.text
    release: str = r.json()["release_id"]
    return release


def test_accuracy_alert_of_a_release_the_fleet_left_resolves_and_fires_again(
    loop: dict[str, Any], webhook: Webhook
) -> None:
    """The accuracy alert follows the devices that still run the release: when all moved
    on it resolves (its gauge goes away), and a later regression opens a new one, which
    fires the webhook again."""
    old = loop["release"]
    stream(loop, dict.fromkeys(DEVICES, 2.5), 3)
    run(loop)
    [alert] = open_alerts(loop, "accuracy")
    assert f'parkwatch_cp_estimated_accuracy{{release="{old}"}}' in loop["client"].get(
        "/metrics").text

    new = _new_release(loop)
    stream(loop, dict.fromkeys(DEVICES, 0.0), 2, release=new)
    body = run(loop)
    assert alert["id"] in body["alerts_resolved"] and open_alerts(loop, "accuracy") == []
    fleet = next(r for r in body["fleet_reports"] if r["release_id"] == old)
    assert fleet["statistics"]["moved_on"] and fleet["statistics"]["estimated_accuracy"] is None
    assert f'parkwatch_cp_estimated_accuracy{{release="{old}"}}' not in loop["client"].get(
        "/metrics").text

    def accuracy_opened() -> int:
        return sum(1 for b in webhook.bodies
                   if b["event"] == "alert.opened" and b["alert"]["kind"] == "accuracy")

    opened = accuracy_opened()
    stream(loop, dict.fromkeys(DEVICES, 2.5), 3, release=old)  # rolled back, bad again
    body = run(loop)
    [again] = open_alerts(loop, "accuracy")
    assert again["id"] != alert["id"] and again["id"] in body["alerts_opened"]
    assert accuracy_opened() == opened + 1


def test_a_degenerate_reference_profile_does_not_stop_the_other_releases(
    loop: dict[str, Any],
) -> None:
    """A profile with all-zero confidence counts has no reference accuracy: its release is
    still analysed (drift, no accuracy), and the other releases are analysed as usual."""
    client, h = loop["client"], loop["h"]
    sha = client.post(f"{API}/artifacts", content=BLOB, headers=h).json()["sha256"]
    ref = loop["profile"]
    odd = ref.model_copy(update={"confidence": ref.confidence.model_copy(
        update={"counts": [0.0] * len(ref.confidence.counts)})})
    spec = registration("oddnet", [(sha, len(BLOB), "fp32")], reference_profile=odd)
    r = client.post(f"{API}/models/oddnet/versions", json=spec.model_dump(mode="json"),
                    headers=h)
    assert r.status_code == 201, r.text
    odd_release = _new_release(loop, "oddnet")
    stream(loop, {"cam-a": 0.0}, 3, release=odd_release)
    stream(loop, {"cam-b": 2.5, "cam-c": 2.5}, 3)
    body = run(loop)
    assert body["failed_releases"] == {}
    by_release = {r["release_id"]: r["statistics"] for r in body["fleet_reports"]}
    assert by_release[odd_release]["reference_accuracy"] is None
    assert by_release[odd_release]["estimated_accuracy"] is None
    assert by_release[loop["release"]]["accuracy_dropped"]
    assert [a["release_id"] for a in open_alerts(loop, "accuracy")] == [loop["release"]]
