"""Registry operations against a real store (SQLite file and PostgreSQL): aliases and their
audit trail, version search, refusing to delete used versions, key rotation."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.services import devices
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.keys import Keyring
from control_plane.testing import registration, reported_state
from protocols import Lineage, SignedManifest, load_public_key, verify_manifest

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


def register(
    client: TestClient, name: str = "petnet", accuracy: float = 0.9, dataset: str = "ds-1"
) -> dict[str, Any]:
    blob = f"{name}-{accuracy}-{dataset}".encode() * 10
    sha = client.post(f"{API}/artifacts", content=blob).json()["sha256"]
    spec = registration(
        name,
        [(sha, len(blob), "int8")],
        metrics={"accuracy": accuracy, "macro_f1": accuracy - 0.05},
        lineage=Lineage(dataset_version=dataset),
    )
    r = client.post(f"{API}/models/{name}/versions", json=spec.model_dump(mode="json"))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def versions(client: TestClient, **params: Any) -> list[tuple[str, str]]:
    r = client.get(f"{API}/versions", params=params)
    assert r.status_code == 200, r.text
    return [(v["model_name"], v["version"]) for v in r.json()["items"]]


def test_aliases_move_and_are_audited(client: TestClient) -> None:
    for acc in (0.8, 0.9, 0.95):
        register(client, accuracy=acc)
    r = client.put(f"{API}/models/petnet/aliases/champion", json={"version": "1"})
    assert r.status_code == 200 and r.json()["version"] == "1"
    assert client.put(f"{API}/models/petnet/aliases/champion", json={"version": "2"}).json()[
        "version"
    ] == "2"
    client.put(f"{API}/models/petnet/aliases/challenger", json={"version": "3"})

    assert client.get(f"{API}/models/petnet/versions/champion").json()["version"] == "2"
    listed = client.get(f"{API}/models/petnet/aliases").json()
    assert [(a["alias"], a["version"]) for a in listed["items"]] == [
        ("challenger", "3"), ("champion", "2")]
    assert client.get(f"{API}/models/petnet/versions/2").json()["aliases"] == ["champion"]
    release = client.post(f"{API}/releases", json={"model_name": "petnet", "version": "champion"})
    assert release.status_code == 201 and release.json()["model_version"] == "2"

    assert client.delete(f"{API}/models/petnet/aliases/challenger").status_code == 204
    assert client.get(f"{API}/models/petnet/aliases/challenger").status_code == 404
    assert client.put(f"{API}/models/petnet/aliases/Bad Alias", json={"version": "1"}) \
        .status_code == 422
    assert client.put(f"{API}/models/petnet/aliases/x", json={"version": "9"}).status_code == 404

    trail = client.get(f"{API}/audit", params={"target": "model:petnet/alias:"}).json()["items"]
    moves = [(e["action"], e["target"].rsplit(":", 1)[1], e["detail"]["from_version"],
              e["detail"]["to_version"], e["who"]) for e in reversed(trail)]
    assert moves == [
        ("alias.set", "champion", None, "1", "bootstrap-admin"),
        ("alias.set", "champion", "1", "2", "bootstrap-admin"),
        ("alias.set", "challenger", None, "3", "bootstrap-admin"),
        ("alias.remove", "challenger", "3", None, "bootstrap-admin"),
    ]


def test_search_versions_by_metrics_alias_dataset_and_date(client: TestClient) -> None:
    register(client, "petnet", 0.80, "ds-1")
    register(client, "petnet", 0.92, "ds-2")
    register(client, "catnet", 0.95, "ds-2")
    client.put(f"{API}/models/catnet/aliases/champion", json={"version": "1"})

    assert set(versions(client, min_accuracy=0.9)) == {("petnet", "2"), ("catnet", "1")}
    assert versions(client, min_accuracy=0.9, model="petnet") == [("petnet", "2")]
    assert versions(client, min_metric="macro_f1:0.8") == [("catnet", "1"), ("petnet", "2")]
    assert versions(client, dataset_version="ds-1") == [("petnet", "1")]
    assert versions(client, alias="champion") == [("catnet", "1")]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert versions(client, created_after=later) == []
    assert len(versions(client, created_before=later)) == 3
    page = client.get(f"{API}/versions", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    assert client.get(f"{API}/versions", params={"min_metric": "acc>0.9"}).status_code == 422
    naive = client.get(f"{API}/versions", params={"created_after": "2026-01-01T00:00:00"})
    assert naive.status_code == 422


def test_delete_refuses_used_versions(client: TestClient, settings: ControlPlaneSettings) -> None:
    register(client)
    register(client)
    register(client)
    release = client.post(f"{API}/releases", json={"model_name": "petnet", "version": "1"}).json()
    rel2 = client.post(f"{API}/releases", json={"model_name": "petnet", "version": "2"}).json()
    client.post(f"{API}/devices", json={"device_id": "cam-1"})
    client.post(f"{API}/devices", json={"device_id": "cam-2"})
    r = client.post(f"{API}/rollouts", json={"release_id": release["release_id"],
                                             "devices": ["cam-1"]})
    assert r.status_code == 201
    engine = create_db_engine(settings.resolved_database_url)
    with session_scope(engine) as session:  # cam-2 reports it runs release 2
        devices.apply_reported(session, reported_state("cam-2", rel2["release_id"]))
    engine.dispose()

    r = client.delete(f"{API}/models/petnet/versions/1")
    assert r.status_code == 409
    assert release["release_id"] in r.json()["detail"] and "cam-1" in r.json()["detail"]
    r = client.delete(f"{API}/models/petnet/versions/2")
    assert r.status_code == 409 and "cam-2" in r.json()["detail"]
    client.put(f"{API}/models/petnet/aliases/champion", json={"version": "3"})
    r = client.delete(f"{API}/models/petnet/versions/3")
    assert r.status_code == 409 and "champion" in r.json()["detail"]
    client.delete(f"{API}/models/petnet/aliases/champion")

    assert client.delete(f"{API}/models/petnet/versions/3").status_code == 204
    assert client.get(f"{API}/models/petnet/versions/3").status_code == 404
    assert [v["version"] for v in client.get(f"{API}/models/petnet/versions").json()["items"]] \
        == ["2", "1"]
    assert register(client)["version"] == "4"  # numbers are never reused
    entry = client.get(f"{API}/audit", params={"action": "model_version.delete"}).json()
    assert entry["items"][0]["target"] == "model:petnet/3"


def test_rotated_keys_keep_old_releases_verifiable(
    client: TestClient, settings: ControlPlaneSettings
) -> None:
    register(client)
    old = client.post(f"{API}/releases", json={"model_name": "petnet"}).json()
    ring = Keyring(settings.keys_dir)
    new_key = ring.rotate()  # what `parkwatch keys rotate` does
    new = client.post(f"{API}/releases", json={"model_name": "petnet"}).json()
    assert new["key_id"] == new_key != old["key_id"]

    keys = client.get(f"{API}/keys").json()["items"]
    assert (keys[0]["key_id"], keys[0]["active"]) == (new_key, True)
    trusted = {k["key_id"]: load_public_key(k["public_key_pem"].encode()) for k in keys}
    assert set(trusted) == {old["key_id"], new_key}
    for release in (old, new):
        signed = SignedManifest.model_validate(
            client.get(f"{API}/releases/{release['release_id']}/manifest").json()
        )
        assert verify_manifest(signed, trusted).release_id == release["release_id"]
