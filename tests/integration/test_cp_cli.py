"""The control plane's CLI: local admin commands, and operator commands against real uvicorn."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.testing import registration
from parkwatch_cli import app as root_app
from tests.conftest import REPO_ROOT, free_port, serving, wait_for_port

runner = CliRunner()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real uvicorn serving the API (no MQTT) on a free port."""
    port = free_port()
    data_dir = tmp_path / "data"
    settings = ControlPlaneSettings(data_dir=data_dir, port=port)
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        yield url, data_dir


@pytest.fixture
def env(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url, data_dir = server
    monkeypatch.delenv("PARKWATCH_API_TOKEN", raising=False)
    monkeypatch.delenv("PARKWATCH_CONFIG", raising=False)
    return {"PARKWATCH_API_URL": url, "PARKWATCH_DATA_DIR": str(data_dir)}


def cli(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = runner.invoke(root_app, args, env=env)
    return result.exit_code, result.output


def test_device_commands(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "agent.toml"
    code, text = cli(["devices", "create", "cam-1", "--label", "park=p1", "--camera",
                      "gate=rtsp://10.0.0.5/s1", "--out", str(out)], env)
    assert code == 0, text
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    config = tomllib.loads(out.read_text())
    assert config["device_id"] == "cam-1" and config["cameras"][0]["camera_id"] == "gate"

    code, text = cli(["devices", "list", "--json"], env)
    assert code == 0 and json.loads(text)["items"][0]["labels"] == {"park": "p1"}
    code, text = cli(["devices", "list"], env)
    assert code == 0 and "cam-1" in text
    code, text = cli(["devices", "show", "cam-1"], env)
    assert code == 0 and "cam-1" in text
    code, text = cli(["devices", "show", "nope"], env)
    assert code == 1 and "404" in text and "parkwatch devices create" in text
    code, text = cli(["devices", "create", "cam-2", "--label", "oops"], env)
    assert code == 1 and "key=value" in text


def test_tokens_scopes_and_keys(env: dict[str, str]) -> None:
    code, token = cli(["tokens", "create", "--name", "ci", "--scope", "read"], env)
    assert code == 0 and token.strip().startswith("pw_")
    read_env = {**env, "PARKWATCH_API_TOKEN": token.strip()}
    assert cli(["devices", "list", "--json"], read_env)[0] == 0
    code, text = cli(["devices", "create", "cam-9"], read_env)
    assert code == 1 and "403" in text and "admin" in text
    code, text = cli(["tokens", "create", "--name", "x", "--scope", "root"], env)
    assert code == 1 and "unknown scope" in text
    code, pem = cli(["keys", "export"], env)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_release_and_rollout_commands(env: dict[str, str]) -> None:
    token = (Path(env["PARKWATCH_DATA_DIR"]) / "admin.token").read_text().strip()
    with httpx.Client(base_url=env["PARKWATCH_API_URL"],
                      headers={"Authorization": f"Bearer {token}"}) as http:
        sha = http.post("/api/v1/artifacts", content=b"onnx-bytes").json()["sha256"]
        spec = registration("petnet", [(sha, len(b"onnx-bytes"), "int8")])
        assert http.post("/api/v1/models/petnet/versions",
                         json=spec.model_dump(mode="json")).status_code == 201
    assert cli(["devices", "create", "cam-1"], env)[0] == 0

    code, text = cli(["models", "list"], env)
    assert code == 0 and "petnet" in text
    code, text = cli(["models", "versions", "petnet", "--json"], env)
    assert code == 0 and json.loads(text)["items"][0]["version"] == "1"
    code, text = cli(["releases", "create", "petnet", "--json"], env)
    assert code == 0, text
    release_id = json.loads(text)["release_id"]
    assert release_id in cli(["releases", "list"], env)[1]
    assert cli(["releases", "show", release_id], env)[0] == 0
    code, text = cli(["releases", "create", "petnet", "--version", "9"], env)
    assert code == 1 and "no version" in text

    code, text = cli(["rollouts", "start", release_id, "--device", "cam-1", "--json"], env)
    assert code == 0, text
    rollout = json.loads(text)
    code, text = cli(["rollouts", "status", rollout["rollout_id"]], env)
    assert code == 0 and "pending" in text and "cam-1" in text
    code, text = cli(["telemetry", "list", "--device", "cam-1", "--json"], env)
    assert code == 0 and json.loads(text)["total"] == 0


def test_unreachable_api_names_the_fix(tmp_path: Path) -> None:
    env = {"PARKWATCH_API_URL": f"http://127.0.0.1:{free_port()}",
           "PARKWATCH_DATA_DIR": str(tmp_path)}
    code, text = cli(["devices", "list"], env)
    assert code == 1 and "cannot reach" in text and "parkwatch serve" in text


def test_db_upgrade_and_keys_init_with_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text(f'data_dir = "{tmp_path / "d"}"\n')
    code, text = cli(["db", "upgrade", "--config", str(cfg)], {})
    assert code == 0, text
    assert (tmp_path / "d" / "parkwatch.db").exists()
    code, first = cli(["keys", "init", "--config", str(cfg)], {})
    assert code == 0
    assert cli(["keys", "init", "--config", str(cfg)], {})[1] == first
    code, rotated = cli(["keys", "init", "--rotate", "--config", str(cfg)], {})
    assert code == 0 and rotated != first
    code, both = cli(["keys", "export", "--all", "--config", str(cfg)], {})
    assert both.count("BEGIN PUBLIC KEY") == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 1\n")
    code, text = cli(["db", "upgrade", "--config", str(bad)], {})
    assert code == 1 and "colour" in text


def test_serve_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`parkwatch serve` with no config but a data dir: embedded broker, API, clean SIGTERM."""
    port, mqtt_port = free_port(), free_port()
    env = {**os.environ, "PARKWATCH_DATA_DIR": str(tmp_path), "PARKWATCH_PORT": str(port),
           "PARKWATCH_EMBEDDED_BROKER_PORT": str(mqtt_port), "PARKWATCH_MQTT_CLIENT_ID": "cp-serve"}
    env.pop("PARKWATCH_CONFIG", None)
    env.pop("PARKWATCH_MQTT_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "parkwatch_cli", "serve"], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30)
        wait_for_port(mqtt_port, timeout=10)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
        assert health["status"] in ("ok", "degraded") and health["embedded_broker"] is True
        assert (tmp_path / "admin.token").exists()
        record = json.loads((tmp_path / "serve.json").read_text())  # the worker checks it
        assert record["broker"] == f"mqtt://127.0.0.1:{mqtt_port}"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert f"dashboard: http://127.0.0.1:{port}/dashboard/".encode() in out
        # uvicorn re-raises the signal after a clean shutdown, so the exit says "SIGTERM"
        assert proc.returncode in (0, -signal.SIGTERM), out.decode()[-2000:]
        assert b"Application shutdown complete" in out
        assert b"embedded MQTT broker stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
