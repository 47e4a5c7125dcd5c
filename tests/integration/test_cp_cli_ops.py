"""Operator commands (aliases, versions, groups, labels, jobs, alerts,
drift, audit, keys, tokens) against a real uvicorn and SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.testing import registration
from parkwatch_cli import app as root_app
from tests.conftest import free_port, serving

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    port = free_port()
    data_dir = tmp_path / "data"
    app = create_app(ControlPlaneSettings(data_dir=data_dir, port=port), enable_mqtt=False)
    monkeypatch.delenv("PARKWATCH_API_TOKEN", raising=False)
    monkeypatch.delenv("PARKWATCH_CONFIG", raising=False)
    with serving(app, port) as url:
        yield {"PARKWATCH_API_URL": url, "PARKWATCH_DATA_DIR": str(data_dir)}


def cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = runner.invoke(root_app, args, env=env)
    return result.exit_code, result.output


def ok_json(args: list[str], env: dict[str, str]) -> object:
    code, text = cli([*args, "--json"], env)
    assert code == 0, text
    return json.loads(text)


def test_registry_commands(env: dict[str, str]) -> None:
    token = (Path(env["PARKWATCH_DATA_DIR"]) / "admin.token").read_text().strip()
    with httpx.Client(base_url=env["PARKWATCH_API_URL"] + "/api/v1",
                      headers={"Authorization": f"Bearer {token}"}) as http:
        for acc in (0.8, 0.95):
            blob = f"m{acc}".encode()
            sha = http.post("/artifacts", content=blob).json()["sha256"]
            spec = registration("petnet", [(sha, len(blob), "int8")], metrics={"accuracy": acc})
            assert http.post("/models/petnet/versions",
                             json=spec.model_dump(mode="json")).status_code == 201

    assert cli(["aliases", "set", "petnet", "champion", "1"], env)[0] == 0
    code, text = cli(["aliases", "set", "petnet", "champion", "2"], env)
    assert code == 0 and "champion -> version 2" in text
    code, text = cli(["aliases", "list", "petnet"], env)
    assert code == 0 and "champion" in text
    page = ok_json(["versions", "list", "--min-accuracy", "0.9"], env)
    assert [v["version"] for v in page["items"]] == ["2"]  # type: ignore[index]
    code, text = cli(["versions", "list", "--alias", "champion"], env)
    assert code == 0 and "champion" in text
    assert ok_json(["versions", "show", "petnet", "champion"], env)["version"] == "2"  # type: ignore[index]

    release = ok_json(["releases", "create", "petnet", "--version", "1"], env)
    code, text = cli(["versions", "delete", "petnet", "1", "--yes"], env)
    assert code == 1 and "409" in text and release["release_id"] in text  # type: ignore[index]
    code, text = cli(["versions", "delete", "petnet", "2", "--yes"], env)
    assert code == 1 and "champion" in text
    assert cli(["aliases", "delete", "petnet", "champion"], env)[0] == 0
    assert cli(["versions", "delete", "petnet", "2", "--yes"], env)[0] == 0
    code, text = cli(["aliases", "set", "petnet", "champion", "2"], env)
    assert code == 1 and "no version or alias" in text

    audit = ok_json(["audit", "list", "--action", "alias.set"], env)
    assert [e["detail"]["to_version"] for e in audit["items"]] == ["2", "1"]  # type: ignore[index]
    code, text = cli(["audit", "list"], env)
    assert code == 0 and "audit log" in text
    deleted = ok_json(["audit", "list", "--target", "model:petnet/2"], env)
    assert "model_version.delete" in {e["action"] for e in deleted["items"]}  # type: ignore[index]


def test_fleet_commands(env: dict[str, str]) -> None:
    assert cli(["devices", "create", "cam-1", "--label", "park=p1"], env)[0] == 0
    assert cli(["devices", "create", "cam-2", "--label", "park=p2"], env)[0] == 0
    code, text = cli(["devices", "label", "cam-2", "camera=ptz", "park-"], env)
    assert code == 0 and "camera=ptz" in text and "park" not in text
    code, text = cli(["devices", "label", "cam-2", "oops"], env)
    assert code == 1 and "key=value" in text
    code, text = cli(["groups", "create", "p1", "--selector", "park=p1"], env)
    assert code == 0 and "1 device(s)" in text
    page = ok_json(["devices", "list", "--group", "p1"], env)
    assert [d["device_id"] for d in page["items"]] == ["cam-1"]  # type: ignore[index]
    page = ok_json(["devices", "list", "--label", "camera=ptz", "--offline"], env)
    assert [d["device_id"] for d in page["items"]] == ["cam-2"]  # type: ignore[index]
    code, text = cli(["groups", "list"], env)
    assert code == 0 and "p1" in text
    code, text = cli(["groups", "show", "nope"], env)
    assert code == 1 and "parkwatch groups create" in text
    assert cli(["groups", "delete", "p1"], env)[0] == 0

    job = ok_json(["jobs", "create", "petnet", "--dataset", "ds-2"], env)
    code, text = cli(["jobs", "list"], env)
    assert code == 0 and job["job_id"] in text  # type: ignore[index]
    assert ok_json(["jobs", "show", job["job_id"]], env)["status"] == "queued"  # type: ignore[index]
    assert ok_json(["alerts", "list", "--state", "open"], env)["total"] == 0  # type: ignore[index]
    code, text = cli(["alerts", "acknowledge", "12345"], env)
    assert code == 1 and "404" in text and "parkwatch alerts list" in text
    assert ok_json(["drift", "list"], env)["total"] == 0  # type: ignore[index]


def test_local_key_and_token_commands(env: dict[str, str]) -> None:
    first = ok_json(["keys", "list"], env)
    code, text = cli(["keys", "rotate"], env)
    assert code == 0 and "still trusted" in text
    keys = ok_json(["keys", "list"], env)
    assert len(keys) == 2 and keys[0]["active"] and keys[1] == {  # type: ignore[index,arg-type]
        "key_id": first[0]["key_id"], "active": False}  # type: ignore[index]
    code, pem = cli(["keys", "export"], env)
    assert code == 0 and pem.count("BEGIN PUBLIC KEY") == 2
    code, pem = cli(["keys", "export", "--active-only"], env)
    assert code == 0 and pem.count("BEGIN PUBLIC KEY") == 1

    code, secret = cli(["tokens", "create", "--name", "ci", "--scope", "read"], env)
    assert code == 0
    tokens = ok_json(["tokens", "list"], env)
    ci = next(t for t in tokens["items"] if t["name"] == "ci")  # type: ignore[index]
    assert "pw_" not in json.dumps(tokens)
    read_env = {**env, "PARKWATCH_API_TOKEN": secret.strip()}
    assert cli(["alerts", "list"], read_env)[0] == 0
    code, text = cli(["tokens", "revoke", str(ci["id"])], env)
    assert code == 0 and "revoked" in text
    code, text = cli(["alerts", "list"], read_env)
    assert code == 1 and "401" in text and "parkwatch tokens create" in text
    code, text = cli(["tokens", "revoke", "999"], env)
    assert code == 1 and "tokens list" in text
