"""The operator's commands off the happy path, each answered in one line that names the fix
(no traceback, no silence): an API URL that is not one, or that points at the broker; a
database URL that is not one, or whose server is down; an unknown device; no dead letters;
dead letters whose device or release is gone. Against a real control plane (uvicorn,
SQLite), a real Mosquitto and a real (closed) PostgreSQL port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.ingest import dead_letter
from control_plane.store.db import create_db_engine
from control_plane.testing import telemetry_window
from parkwatch_cli import app as root_app
from tests.conftest import Mosquitto, free_port, serving


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    port = free_port()
    data_dir = tmp_path / "data"
    app = create_app(ControlPlaneSettings(data_dir=data_dir, port=port), enable_mqtt=False)
    for name in ("PARKWATCH_API_TOKEN", "PARKWATCH_CONFIG", "PARKWATCH_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with serving(app, port) as url:
        yield {"PARKWATCH_API_URL": url, "PARKWATCH_DATA_DIR": str(data_dir)}


def one_line(args: list[str], env: dict[str, str], code: int = 1) -> str:
    result = CliRunner().invoke(root_app, args, env=env)
    out = result.output.strip()
    print(f"$ parkwatch {' '.join(args)}\n{out}")
    assert result.exit_code == code, out
    assert result.exception is None or isinstance(result.exception, SystemExit), out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    return out


def test_an_api_url_that_is_not_one(env: dict[str, str]) -> None:
    line = one_line(["devices", "list", "--api-url", "localhost:8000"], env)
    assert "api_url: 'localhost:8000' is not an http:// or https:// URL" in line
    assert "as given on the command line" in line
    line = one_line(["devices", "list"], {**env, "PARKWATCH_API_URL": "ftp://cp"})
    assert "'ftp://cp' is not an http://" in line and "PARKWATCH_API_URL" in line


def test_an_api_url_that_points_at_the_broker(env: dict[str, str], mosquitto: Mosquitto) -> None:
    broker = f"http://127.0.0.1:{mosquitto.port}"
    line = one_line(["devices", "list", "--api-url", broker], env)
    assert line.startswith(f"error: GET /api/v1/devices to {broker} failed: ")
    assert "is that the control plane's HTTP API?" in line and "--api-url" in line


def test_a_database_url_that_is_not_one_or_is_down(env: dict[str, str]) -> None:
    line = one_line(["dead-letters", "list"], {**env, "PARKWATCH_DATABASE_URL": "garbage"})
    assert "database_url: not a database URL: use sqlite:///" in line
    line = one_line(["dead-letters", "replay"],
                    {**env, "PARKWATCH_DATABASE_URL": "mysql://u:hunter2@db/pw"})
    assert "unsupported database 'mysql'" in line and "hunter2" not in line
    down = f"postgresql+psycopg://pw:hunter2@127.0.0.1:{free_port()}/pw"
    line = one_line(["dead-letters", "list"], {**env, "PARKWATCH_DATABASE_URL": down})
    assert "cannot connect to the database" in line and "hunter2" not in line
    assert "check that PostgreSQL runs there" in line and "PARKWATCH_DATABASE_URL" in line


def test_an_unknown_device_is_named_not_an_empty_table(env: dict[str, str]) -> None:
    line = one_line(["telemetry", "list", "--device", "cam-typo"], env)
    assert "no device 'cam-typo'" in line and "parkwatch devices create" in line


def test_dead_letters_none_then_a_device_and_a_release_gone(env: dict[str, str]) -> None:
    line = one_line(["dead-letters", "list"], env, code=0)
    assert line == "no dead letters: every message received was stored"
    assert one_line(["devices", "create", "cam-1", "--out", str(Path(env["PARKWATCH_DATA_DIR"])
                                                               / "cam-1.toml")], env, code=0)
    engine = create_db_engine(f"sqlite:///{Path(env['PARKWATCH_DATA_DIR']) / 'parkwatch.db'}")
    try:  # a window of a release no longer registered; one of a device no longer there
        for device in ("cam-1", "cam-gone"):
            dead_letter.keep(engine, kind="telemetry", device_id=device,
                             message=telemetry_window(device, 5, "rel-gone"),
                             error="ValueError: broken", received_at=datetime.now(UTC))
    finally:
        engine.dispose()
    line = one_line(["dead-letters", "replay"], env, code=0)
    assert line == ("replayed: 2 done (1 stored, 1 unknown_device), 0 failed again "
                    "(parkwatch dead-letters list)")
    assert one_line(["dead-letters", "list"], env, code=0).startswith("no dead letters")
