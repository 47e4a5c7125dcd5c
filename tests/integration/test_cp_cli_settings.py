"""Local admin commands and the worker find the store and broker that `parkwatch serve`
uses, the same way serve does, and refuse in one line when they cannot."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.errors import ConfigError
from control_plane.processes.serve_record import check_beside_serve, write_record
from parkwatch_cli import app as root_app
from tests.conftest import free_port, serving

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PARKWATCH_CONFIG", "PARKWATCH_DATA_DIR", "PARKWATCH_DATABASE_URL",
                 "PARKWATCH_MQTT_URL", "PARKWATCH_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """`worker` points the root logger at the runner's stderr, which closes after the call."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def cli(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(root_app, args, env=env or {})
    return result.exit_code, result.output


def test_tokens_create_in_another_folder_creates_no_second_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    site.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(site)
    assert cli(["db", "upgrade"])[0] == 0

    monkeypatch.chdir(elsewhere)
    code, text = cli(["tokens", "create", "--name", "ci", "--scope", "read"])
    assert code == 1
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    stray = elsewhere / ".parkwatch" / "parkwatch.db"
    assert f"no parkwatch store at {stray}" in lines[0]
    assert "PARKWATCH_DATA_DIR" in lines[0] and "parkwatch db upgrade" in lines[0]
    assert not stray.exists()
    for command in (["tokens", "list"], ["tokens", "revoke", "1"]):
        assert cli(command)[0] == 1
    assert not stray.exists()

    # Given serve's settings, the same command finds serve's store.
    code, secret = cli(["tokens", "create", "--name", "ci", "--scope", "read"],
                       {"PARKWATCH_DATA_DIR": str(site / ".parkwatch")})
    assert code == 0 and secret.strip().startswith("pw_")


def _site(tmp_path: Path, mqtt_url: str) -> Path:
    config = tmp_path / "cp.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nmqtt_url = "{mqtt_url}"\n')
    assert cli(["db", "upgrade", "--config", str(config)])[0] == 0
    write_record(ControlPlaneSettings.load(config))  # what `serve` writes at start
    return config


def test_worker_refuses_a_broker_other_than_serves(tmp_path: Path) -> None:
    serve_broker, other = f"mqtt://127.0.0.1:{free_port()}", f"mqtt://10.9.9.9:{free_port()}"
    config = _site(tmp_path, serve_broker)
    code, text = cli(["worker", "--once", "--config", str(config)],
                     {"PARKWATCH_MQTT_URL": other})
    assert code == 1
    line = text.strip().splitlines()[-1]
    assert line.startswith("error: the worker would use broker " + other)
    assert serve_broker in line and "PARKWATCH_CONFIG" in line


def test_worker_refuses_a_store_other_than_serves(tmp_path: Path) -> None:
    config = _site(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    other = tmp_path / "other.db"
    code, text = cli(["worker", "--once", "--config", str(config)],
                     {"PARKWATCH_DATABASE_URL": f"sqlite:///{other}"})
    assert code == 1 and "no parkwatch store at" in text and not other.exists()


def test_worker_refuses_an_artifact_store_other_than_serves(tmp_path: Path) -> None:
    config = _site(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    other = tmp_path / "elsewhere"
    code, text = cli(["worker", "--once", "--config", str(config)],
                     {"PARKWATCH_ARTIFACT_DIR": str(other)})
    line = text.strip().splitlines()[-1]
    assert code == 1 and line.startswith(f"error: the worker would use artifacts in folder "
                                         f"{other.resolve()}, but `parkwatch serve`"), text
    assert str((tmp_path / "data" / "artifacts").resolve()) in line


def test_worker_with_serves_settings_passes_the_check(tmp_path: Path) -> None:
    config = _site(tmp_path, "mqtt://svc:secret@127.0.0.1:1999")
    record = json.loads((tmp_path / "data" / "serve.json").read_text())
    assert record["broker"] == "mqtt://svc:***@127.0.0.1:1999"  # no password on disk
    check_beside_serve(ControlPlaneSettings.load(config))
    moved = ControlPlaneSettings.load(config, mqtt_url="mqtt://127.0.0.1:2000")
    with pytest.raises(ConfigError, match=r"would use broker mqtt://127\.0\.0\.1:2000"):
        check_beside_serve(moved)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real uvicorn serving the API (no MQTT); its URL and admin token."""
    port = free_port()
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", port=port)
    with serving(create_app(settings, enable_mqtt=False), port) as url:
        yield url, settings.admin_token_path.read_text().strip()


def test_operator_commands_take_api_url_and_token_flags(
    api: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, token = api
    monkeypatch.chdir(tmp_path)  # no admin.token to fall back on
    code, text = cli(["devices", "create", "cam-1", "--api-url", url, "--token", token])
    assert code == 0 and "device_id" in text, text
    code, text = cli(["devices", "list", "--json", "--api-url", url, "--token", token])
    assert code == 0 and json.loads(text)["total"] == 1
    # the flags win over the environment
    code, text = cli(["devices", "list", "--api-url", url, "--token", "pw_wrong"],
                     {"PARKWATCH_API_TOKEN": token})
    assert code == 1 and "refused the token" in text and "--token" in text
    dead = f"http://127.0.0.1:{free_port()}"
    code, text = cli(["devices", "list", "--api-url", dead], {"PARKWATCH_API_URL": url})
    assert code == 1 and f"cannot reach the control plane at {dead}" in text


def test_old_names_work_for_one_version_with_a_deprecation_line(
    api: tuple[str, str]
) -> None:
    url, token = api
    env = {"PARKWATCH_API_URL": url, "PARKWATCH_API_TOKEN": token}
    result = runner.invoke(root_app, ["devices", "add", "cam-2", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert "'add' is deprecated" in result.stderr and "parkwatch devices create" in result.stderr
    assert json.loads(result.stdout)["device_id"] == "cam-2"  # stdout stays clean for scripts
    result = runner.invoke(root_app, ["rollout", "list", "--json"], env=env)
    assert result.exit_code == 0 and "parkwatch rollouts" in result.stderr
    assert json.loads(result.stdout)["total"] == 0
    result = runner.invoke(root_app, ["rollouts", "list", "--json"], env=env)
    assert result.exit_code == 0 and "deprecated" not in result.output
