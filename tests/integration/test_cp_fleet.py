"""Fleet operations against a real store (SQLite file and PostgreSQL): labels, groups and
device filters, training jobs, alerts and drift reports, tokens, scopes, store gauges."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.services import alerts, devices
from control_plane.store.db import create_db_engine, session_scope
from control_plane.testing import registration, reported_state
from protocols import DeviceStatus

API = "/api/v1"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> ControlPlaneSettings:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'cp.db'}"
    )
    return ControlPlaneSettings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def client(settings: ControlPlaneSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        c.headers["Authorization"] = f"Bearer {settings.admin_token_path.read_text().strip()}"
        yield c


def in_store(settings: ControlPlaneSettings, fn: Any) -> Any:
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            return fn(session)
    finally:
        engine.dispose()


def ids(client: TestClient, path: str, **params: Any) -> list[str]:
    r = client.get(f"{API}/{path}", params=params)
    assert r.status_code == 200, r.text
    return [d["device_id"] for d in r.json()["items"]]


def test_labels_groups_and_device_filters(
    client: TestClient, settings: ControlPlaneSettings
) -> None:
    for device_id, park in (("cam-1", "p1"), ("cam-2", "p1"), ("cam-3", "p2")):
        assert client.post(f"{API}/devices", json={"device_id": device_id,
                                                   "labels": {"park": park}}).status_code == 201
    r = client.patch(f"{API}/devices/cam-2/labels", json={"set": {"camera": "ptz"}})
    assert r.json()["labels"] == {"park": "p1", "camera": "ptz"}
    r = client.patch(f"{API}/devices/cam-3/labels",
                     json={"set": {"camera": "ptz"}, "remove": ["park"]})
    assert r.json()["labels"] == {"camera": "ptz"}

    assert ids(client, "devices", label="park=p1") == ["cam-1", "cam-2"]
    assert ids(client, "devices", label=["park=p1", "camera=ptz"]) == ["cam-2"]
    g = client.post(f"{API}/groups", json={"name": "ptz", "selector": {"camera": "ptz"}})
    assert g.status_code == 201 and g.json()["device_count"] == 2
    assert client.post(f"{API}/groups", json={"name": "ptz", "selector": {}}).status_code == 409
    assert ids(client, "devices", group="ptz") == ["cam-2", "cam-3"]
    assert ids(client, "devices", group="ptz", label="park=p1") == ["cam-2"]
    assert client.get(f"{API}/devices", params={"group": "nope"}).status_code == 404
    assert client.get(f"{API}/devices", params={"label": "nokey"}).status_code == 422

    in_store(settings, lambda s: devices.apply_status(
        s, DeviceStatus(device_id="cam-3", state="online", at=datetime.now(UTC))))
    assert ids(client, "devices", online="true") == ["cam-3"]
    assert ids(client, "devices", online="false") == ["cam-1", "cam-2"]

    blob = b"model" * 20
    sha = client.post(f"{API}/artifacts", content=blob).json()["sha256"]
    spec = registration("petnet", [(sha, len(blob), "int8")])
    client.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"))
    rel = client.post(f"{API}/releases", json={"model_name": "petnet"}).json()["release_id"]
    r = client.post(f"{API}/rollouts", json={"release_id": rel, "group": "ptz",
                                             "waves": ["100%"]})  # both at once
    assert r.status_code == 201 and [d["device_id"] for d in r.json()["devices"]] == [
        "cam-2", "cam-3"]
    in_store(settings, lambda s: devices.apply_reported(s, reported_state("cam-1", rel)))
    assert ids(client, "devices", desired_release=rel) == ["cam-2", "cam-3"]
    assert ids(client, "devices", current_release=rel) == ["cam-1"]
    assert ids(client, "devices", release=rel) == ["cam-1", "cam-2", "cam-3"]
    assert client.get(f"{API}/devices/cam-1").json()["current_release_id"] == rel

    assert client.delete(f"{API}/groups/ptz").status_code == 204
    assert client.get(f"{API}/groups").json()["total"] == 0
    actions = {e["action"] for e in client.get(f"{API}/audit").json()["items"]}
    assert {"device.label", "group.create", "group.delete", "rollout.start"} <= actions


def test_training_job_lifecycle(client: TestClient) -> None:
    job = client.post(f"{API}/jobs", json={"model_name": "petnet", "dataset_version": "ds-2",
                                           "params": {"epochs": 3}})
    assert job.status_code == 201 and job.json()["status"] == "queued"
    job_id = job.json()["job_id"]
    r = client.patch(f"{API}/jobs/{job_id}", json={"status": "running", "progress": 0.2,
                                                   "stage": "train"})
    assert r.status_code == 200 and r.json()["started_at"] is not None
    r = client.patch(f"{API}/jobs/{job_id}", json={"progress": 0.1})
    assert r.json()["progress"] == pytest.approx(0.2)  # progress never goes back
    r = client.patch(f"{API}/jobs/{job_id}", json={"status": "succeeded", "result_version": "7"})
    body = r.json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0 and body["finished_at"]
    r = client.patch(f"{API}/jobs/{job_id}", json={"status": "running"})
    assert r.status_code == 409 and "new job" in r.json()["detail"]
    assert client.patch(f"{API}/jobs/{job_id}", json={}).status_code == 422
    assert client.patch(f"{API}/jobs/{job_id}", json={"progress": 2}).status_code == 422
    assert client.get(f"{API}/jobs", params={"status": "succeeded"}).json()["total"] == 1
    assert client.get(f"{API}/jobs", params={"status": "queued"}).json()["total"] == 0
    assert client.get(f"{API}/jobs/job-nope").status_code == 404
    trail = client.get(f"{API}/audit", params={"target": f"job:{job_id}"}).json()
    assert [e["action"] for e in trail["items"]].count("job.update") == 3


def test_alerts_and_drift_reports(client: TestClient, settings: ControlPlaneSettings) -> None:
    client.post(f"{API}/devices", json={"device_id": "cam-1"})
    now = datetime.now(UTC)

    def write(session: Any) -> int:
        report = alerts.record_drift_report(
            session, device_id="cam-1", release_id=None, window_start=now, window_end=now,
            window_count=5, sample_count=1500, drifted=True,
            statistics={"psi": {"brightness": {"value": 0.4, "alarm_level": 0.05}}},
        )
        alerts.raise_alert(session, "drift", "warning", "brightness drifted on cam-1",
                           device_id="cam-1", drift_report_id=report.id)
        alerts.raise_alert(session, "offline", "critical", "cam-1 offline", device_id="cam-1")
        return report.id or 0

    report_id = in_store(settings, write)
    drift = client.get(f"{API}/drift", params={"device": "cam-1", "drifted": "true"}).json()
    assert drift["total"] == 1 and drift["items"][0]["id"] == report_id
    assert client.get(f"{API}/drift/{report_id}").json()["statistics"]["psi"]["brightness"][
        "value"] == 0.4
    assert client.get(f"{API}/drift/999999").status_code == 404

    listed = client.get(f"{API}/alerts", params={"state": "open"}).json()
    assert listed["total"] == 2
    drift_alert = next(a for a in listed["items"] if a["kind"] == "drift")
    assert drift_alert["drift_report_id"] == report_id
    r = client.patch(f"{API}/alerts/{drift_alert['id']}", json={"state": "acknowledged"})
    assert r.status_code == 200 and r.json()["updated_by"] == "bootstrap-admin"
    r = client.patch(f"{API}/alerts/{drift_alert['id']}", json={"state": "resolved", "note": "ok"})
    assert r.json()["state"] == "resolved"
    again = client.patch(f"{API}/alerts/{drift_alert['id']}", json={"state": "acknowledged"})
    assert again.status_code == 409
    assert client.get(f"{API}/alerts", params={"severity": "critical"}).json()["total"] == 1

    client.get("/metrics")  # refreshes the store gauges
    assert REGISTRY.get_sample_value("parkwatch_cp_alerts_open", {"severity": "critical"}) == 1
    assert REGISTRY.get_sample_value("parkwatch_cp_devices") == 1


def test_tokens_and_scopes_on_every_new_route(client: TestClient) -> None:
    created = client.post(f"{API}/tokens", json={"name": "ci-read", "scopes": ["read"]})
    assert created.status_code == 201
    read = {"Authorization": f"Bearer {created.json()['token']}"}
    token_id = created.json()["id"]
    listing = client.get(f"{API}/tokens").json()
    assert {t["name"] for t in listing["items"]} >= {"bootstrap-admin", "ci-read"}
    assert all("token" not in t and "token_sha256" not in t for t in listing["items"])

    for method, path in (("GET", "alerts"), ("GET", "jobs"), ("GET", "drift"),
                         ("GET", "groups"), ("GET", "versions"), ("GET", "datasets"),
                         ("GET", "keys")):
        assert client.request(method, f"{API}/{path}", headers=read).status_code == 200
        assert client.request(method, f"{API}/{path}",
                              headers={"Authorization": "Bearer x"}).status_code == 401
    for method, path, body in (
        ("POST", "jobs", {"model_name": "m"}),
        ("POST", "groups", {"name": "g", "selector": {}}),
        ("POST", "datasets", {"name": "d", "version": "1"}),
        ("PATCH", "alerts/1", {"state": "resolved"}),
        ("PUT", "models/m/aliases/champion", {"version": "1"}),
        ("GET", "tokens", None),
        ("GET", "audit", None),
        ("DELETE", "models/m/versions/1", None),
    ):
        r = client.request(method, f"{API}/{path}", json=body, headers=read)
        assert r.status_code == 403, (method, path, r.text)

    me = next(t for t in listing["items"] if t["name"] == "bootstrap-admin")
    assert client.delete(f"{API}/tokens/{me['id']}").status_code == 409
    assert client.delete(f"{API}/tokens/{token_id}").json()["revoked"] is True
    assert client.get(f"{API}/alerts", headers=read).status_code == 401
    assert client.delete(f"{API}/tokens/{token_id}").status_code == 200  # idempotent
    revokes = client.get(f"{API}/audit", params={"action": "token.revoke"}).json()
    assert revokes["total"] == 1 and revokes["items"][0]["who"] == "bootstrap-admin"


def test_datasets(client: TestClient) -> None:
    body = {"name": "parks", "version": "2026-01", "sample_count": 1200,
            "class_counts": {"cat": 400, "dog": 800}}
    assert client.post(f"{API}/datasets", json=body).status_code == 201
    assert client.post(f"{API}/datasets", json=body).status_code == 409
    one = client.get(f"{API}/datasets/parks/2026-01").json()
    assert one["class_counts"] == {"cat": 400, "dog": 800}
    assert client.get(f"{API}/datasets", params={"name": "other"}).json()["total"] == 0
