"""`parkwatch agent check`: config and trusted keys validated, errors name the key."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from edge_agent.cli import app
from protocols import generate_signing_key
from tests.agent_kit import write_config


def config(tmp_path: Path, **extra: object) -> Path:
    return write_config(tmp_path / "agent.toml", mqtt_url="mqtt://127.0.0.1:1883",
                        server_url="http://127.0.0.1:8000", key=generate_signing_key(),
                        data_dir=tmp_path / "data",
                        cameras=[{"camera_id": "gate", "source": "rtsp://cam/1"}],
                        **extra)  # type: ignore[arg-type]


def test_check_accepts_a_good_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", "--offline", "--config", str(config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "config OK" in result.output and "camera gate: url" in result.output


def test_check_names_the_bad_key(tmp_path: Path) -> None:
    path = config(tmp_path, outbox_max_rows=1)
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "outbox_max_rows" in result.output


def test_check_fails_without_trusted_keys(tmp_path: Path) -> None:
    path = config(tmp_path, trusted_public_keys=[])
    result = CliRunner().invoke(app, ["check", "--offline"],
                                env={"PARKWATCH_AGENT_CONFIG": str(path)})
    assert result.exit_code == 1
    assert "NONE" in result.output


def test_check_reports_an_unreadable_key_file(tmp_path: Path) -> None:
    path = config(tmp_path, trusted_key_files=[str(tmp_path / "missing.pem")])
    result = CliRunner().invoke(app, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "trusted_key_files" in result.output
