"""The control plane's HTTP API against a real store: SQLite file and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import stat
import tomllib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.testing import registration
from protocols import SignedManifest, load_public_key, verify_manifest

API = "/api/v1"
BLOB = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(data_dir=tmp_path / "data", database_url=database_url,
                                public_url="http://cp.test:8000")


@pytest.fixture
def client(settings: ControlPlaneSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        yield c


@pytest.fixture
def admin(settings: ControlPlaneSettings, client: TestClient) -> dict[str, str]:
    token = settings.admin_token_path.read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def _token(settings: ControlPlaneSettings, *scopes: str) -> dict[str, str]:
    from control_plane.services import auth
    from control_plane.store.db import create_db_engine, session_scope

    engine = create_db_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        _row, secret = auth.create_token(session, f"test-{'-'.join(scopes)}", scopes, who="test")
    engine.dispose()
    return {"Authorization": f"Bearer {secret}"}


def _upload(client: TestClient, headers: dict[str, str], data: bytes) -> str:
    r = client.post(f"{API}/artifacts", content=data, headers=headers)
    assert r.status_code == 201, r.text
    sha: str = r.json()["sha256"]
    return sha


def _register(client: TestClient, h: dict[str, str], name: str = "petnet") -> dict[str, Any]:
    int8 = _upload(client, h, BLOB)
    fp32 = _upload(client, h, BLOB * 2)
    spec = registration(name, [(int8, len(BLOB), "int8"), (fp32, 2 * len(BLOB), "fp32")])
    r = client.post(f"{API}/models/{name}/versions", json=spec.model_dump(mode="json"), headers=h)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def test_bootstrap_admin_token_file(settings: ControlPlaneSettings, client: TestClient) -> None:
    path = settings.admin_token_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("pw_")
    assert client.get("/healthz").json()["status"] == "ok"
    assert "parkwatch_cp_http_requests_total" in client.get("/metrics").text


def test_register_release_and_verify_manifest(
    client: TestClient, admin: dict[str, str], settings: ControlPlaneSettings
) -> None:
    first = _register(client, admin)
    second = _register(client, admin)
    assert (first["version"], second["version"]) == ("1", "2")
    assert second["metrics"]["accuracy"] == pytest.approx(0.93)
    assert len(second["artifacts"]) == 2

    r = client.post(f"{API}/releases", json={"model_name": "petnet", "version": "1"},
                    headers=admin)
    assert r.status_code == 201, r.text
    release = r.json()
    assert release["release_id"].startswith("petnet-v1-")
    assert set(release) == {"release_id", "model_name", "model_version", "key_id",
                            "primary_sha256", "created_at"}
    latest = client.post(f"{API}/releases", json={"model_name": "petnet"}, headers=admin).json()
    assert latest["model_version"] == "2"

    signed = SignedManifest.model_validate(
        client.get(f"{API}/releases/{release['release_id']}/manifest", headers=admin).json()
    )
    pem = (settings.keys_dir / f"{release['key_id']}.pub.pem").read_bytes()
    manifest = verify_manifest(signed, {release["key_id"]: load_public_key(pem)})
    assert manifest.release_id == release["release_id"]
    assert manifest.artifact.sha256 == release["primary_sha256"] == first["primary_sha256"]
    assert manifest.fallback_artifact is not None and manifest.fallback_artifact.precision == "fp32"

    one = client.get(f"{API}/models/petnet/versions/2", headers=admin).json()
    assert one["version"] == "2" and one["lineage"]["dataset_version"] == "ds-1"
    models = client.get(f"{API}/models", headers=admin).json()
    assert models["items"][0] | {"created_at": None} == {
        "name": "petnet", "latest_version": "2", "version_count": 2, "created_at": None}


def test_registration_needs_uploaded_artifacts(client: TestClient, admin: dict[str, str]) -> None:
    spec = registration("petnet", [("c" * 64, 10, "int8")])
    r = client.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"),
                    headers=admin)
    assert r.status_code == 422 and "upload it first" in r.json()["detail"]
    r = client.post(f"{API}/models/other/versions", json=spec.model_dump(mode="json"),
                    headers=admin)
    assert r.status_code == 422
    r = client.post(f"{API}/releases", json={"model_name": "nope"}, headers=admin)
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_artifact_ranges_etag_digest(client: TestClient, admin: dict[str, str]) -> None:
    sha = hashlib.sha256(BLOB).hexdigest()
    r = client.post(f"{API}/artifacts", content=BLOB,
                    headers={**admin, "X-Content-Sha256": sha})
    assert r.status_code == 201 and r.json() == {"sha256": sha, "size_bytes": len(BLOB)}
    again = client.post(f"{API}/artifacts", content=BLOB, headers=admin)
    assert again.status_code == 201 and again.json()["sha256"] == sha  # idempotent
    bad = client.post(f"{API}/artifacts", content=BLOB,
                      headers={**admin, "X-Content-Sha256": "0" * 64})
    assert bad.status_code == 422

    url = f"{API}/artifacts/{sha}"
    full = client.get(url, headers=admin)
    assert full.status_code == 200 and full.content == BLOB
    assert full.headers["etag"] == f'"{sha}"'
    assert full.headers["accept-ranges"] == "bytes"
    digest = base64.b64encode(hashlib.sha256(BLOB).digest()).decode()
    assert full.headers["repr-digest"] == f"sha-256=:{digest}:"

    head = client.head(url, headers=admin)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(BLOB))

    first = client.get(url, headers={**admin, "Range": "bytes=0-9"})
    assert first.status_code == 206 and first.content == BLOB[:10]
    assert first.headers["content-range"] == f"bytes 0-9/{len(BLOB)}"
    rest = client.get(url, headers={**admin, "Range": "bytes=10-"})
    assert rest.status_code == 206 and first.content + rest.content == BLOB  # resume
    beyond = client.get(url, headers={**admin, "Range": f"bytes={len(BLOB)}-"})
    assert beyond.status_code == 416
    cached = client.get(url, headers={**admin, "If-None-Match": f'"{sha}"'})
    assert cached.status_code == 304


@pytest.mark.parametrize(
    "name",
    ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "../../../etc/passwd", "ABCDEF" + "0" * 58, "xyz",
     "0" * 64, "0" * 63 + "%00"],
)
def test_artifact_bad_names_are_404(client: TestClient, admin: dict[str, str], name: str) -> None:
    r = client.get(f"{API}/artifacts/{name}", headers=admin)
    assert r.status_code == 404


def test_scopes(client: TestClient, admin: dict[str, str], settings: ControlPlaneSettings) -> None:
    release = client.post(f"{API}/releases", json={"model_name": _register(client, admin)[
        "model_name"]}, headers=admin).json()
    device = client.post(f"{API}/devices", json={"device_id": "cam-1"}, headers=admin).json()
    dev = {"Authorization": f"Bearer {device['token']}"}
    read = _token(settings, "read")
    operate = _token(settings, "operate")

    assert client.get(f"{API}/devices").status_code == 401
    assert client.get(f"{API}/devices", headers={"Authorization": "Bearer pw_nope"}).status_code \
        == 401
    assert client.get(f"{API}/devices", headers=read).status_code == 200
    r = client.post(f"{API}/artifacts", content=b"x", headers=read)
    assert r.status_code == 403 and "operate" in r.json()["detail"]
    assert client.post(f"{API}/devices", json={"device_id": "cam-2"}, headers=operate) \
        .status_code == 403
    assert client.post(f"{API}/artifacts", content=b"x", headers=operate).status_code == 201

    assert client.get(f"{API}/releases/{release['release_id']}/manifest",
                      headers=dev).status_code == 200
    assert client.get(f"{API}/artifacts/{release['primary_sha256']}", headers=dev).status_code \
        == 200
    assert client.get(f"{API}/devices", headers=dev).status_code == 403
    assert client.get(f"{API}/releases", headers=dev).status_code == 403
    assert client.post(f"{API}/artifacts", content=b"y", headers=dev).status_code == 403


def test_provisioning_and_pagination(client: TestClient, admin: dict[str, str]) -> None:
    made = client.post(f"{API}/devices", json={"device_id": "park1-gate", "labels": {"park": "1"}},
                       headers=admin)
    assert made.status_code == 201
    config = tomllib.loads(made.json()["agent_config_toml"])
    assert config["device_id"] == "park1-gate"
    assert config["api_token"] == made.json()["token"]
    assert config["control_plane_url"] == "http://cp.test:8000"
    assert config["trusted_public_keys"][0].startswith("-----BEGIN PUBLIC KEY-----")
    dup = client.post(f"{API}/devices", json={"device_id": "park1-gate"}, headers=admin)
    assert dup.status_code == 409
    bad = client.post(f"{API}/devices", json={"device_id": "Bad/Id"}, headers=admin)
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], str)

    for i in range(4):
        client.post(f"{API}/devices", json={"device_id": f"cam-{i}"}, headers=admin)
    page = client.get(f"{API}/devices?limit=2&offset=1", headers=admin).json()
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [d["device_id"] for d in page["items"]] == ["cam-1", "cam-2"]
    assert client.get(f"{API}/devices?limit=1001", headers=admin).status_code == 422
    one = client.get(f"{API}/devices/cam-3", headers=admin).json()
    assert one["online"] is False and one["reported"] is None and one["desired_revision"] == 0
    assert client.get(f"{API}/devices/nope", headers=admin).status_code == 404


def test_rollout_without_mqtt_sets_desired_state(client: TestClient, admin: dict[str, str]) -> None:
    _register(client, admin)
    release = client.post(f"{API}/releases", json={"model_name": "petnet"}, headers=admin).json()
    for d in ("cam-a", "cam-b"):
        client.post(f"{API}/devices", json={"device_id": d}, headers=admin)
    r = client.post(f"{API}/rollouts", json={"release_id": release["release_id"],
                                              "devices": ["cam-a"], "mode": "active"},
                    headers=admin)
    assert r.status_code == 201, r.text
    rollout = r.json()
    assert rollout["state"] == "in_progress"
    # The answer is the plan; the first wave goes out right after it.
    assert [(d["device_id"], d["state"], d["revision"]) for d in rollout["devices"]] == [
        ("cam-a", "planned", 0)]
    sent = client.get(f"{API}/rollouts/{rollout['rollout_id']}", headers=admin).json()
    assert [(d["device_id"], d["state"], d["revision"]) for d in sent["devices"]] == [
        ("cam-a", "pending", 1)]
    assert sent["device_count"] == 1 and sent["device_states"] == {"pending": 1}
    # One active rollout per device: taking cam-a over must be asked for.
    refused = client.post(f"{API}/rollouts", json={"release_id": release["release_id"]},
                          headers=admin)
    assert refused.status_code == 409 and "--supersede" in refused.json()["detail"]
    all_devices = client.post(f"{API}/rollouts", json={"release_id": release["release_id"],
                                                       "supersede": True, "waves": ["100%"]},
                              headers=admin).json()
    all_devices = client.get(f"{API}/rollouts/{all_devices['rollout_id']}",
                             headers=admin).json()
    assert {d["device_id"]: d["revision"] for d in all_devices["devices"]} == {
        "cam-a": 2, "cam-b": 1}
    one = client.get(f"{API}/rollouts/{all_devices['rollout_id']}?device_limit=1&device_offset=1",
                     headers=admin).json()
    assert [d["device_id"] for d in one["devices"]] == ["cam-b"] and one["device_count"] == 2
    old = client.get(f"{API}/rollouts/{rollout['rollout_id']}", headers=admin).json()
    assert old["devices"][0]["state"] == "superseded" and old["state"] == "superseded"
    device = client.get(f"{API}/devices/cam-a", headers=admin).json()
    assert device["desired_release_id"] == release["release_id"]
    unknown = client.post(f"{API}/rollouts", json={"release_id": release["release_id"],
                                                    "devices": ["ghost"]}, headers=admin)
    assert unknown.status_code == 404 and "ghost" in unknown.json()["detail"]
    assert client.post(f"{API}/rollouts", json={"release_id": "nope"},
                       headers=admin).status_code == 404


def test_audit_entries(client: TestClient, admin: dict[str, str]) -> None:
    _register(client, admin)
    client.post(f"{API}/releases", json={"model_name": "petnet"}, headers=admin)
    client.post(f"{API}/devices", json={"device_id": "cam-1"}, headers=admin)
    entries = client.get(f"{API}/audit?limit=1000", headers=admin).json()["items"]
    actions = [e["action"] for e in entries]
    for action in ("artifact.upload", "model_version.register", "release.create",
                   "device.provision", "token.create"):
        assert action in actions, actions
    assert all(e["who"] in ("bootstrap-admin", "system") for e in entries)
    assert actions.count("artifact.upload") == 2


def test_empty_lists(client: TestClient, admin: dict[str, str]) -> None:
    for path in ("models", "releases", "devices", "rollouts", "telemetry", "events"):
        body = client.get(f"{API}/{path}", headers=admin).json()
        assert body == {"items": [], "total": 0, "limit": 100, "offset": 0}, path
