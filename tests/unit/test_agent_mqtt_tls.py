"""Agent broker settings: TLS files and logins are checked at start-up, never logged."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import load_settings
from edge_agent.errors import ConfigError
from tests.unit.test_agent_config import config


def test_login_and_ca_from_settings_override_the_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = load_settings(config(
        tmp_path, mqtt_url="mqtts://old:oldpw@broker:8883", mqtt_username="cam-1",
        mqtt_password="s3cret-pw", mqtt_ca_file=str(ca)))
    target = settings.mqtt
    assert (target.host, target.port, target.tls) == ("broker", 8883, True)
    assert (target.username, target.password, target.ca_file) == ("cam-1", "s3cret-pw", ca)
    assert "s3cret-pw" not in repr(target) + repr(settings)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"mqtt_ca_file": "/nonexistent/ca.pem", "mqtt_url": "mqtts://b"}, "does not exist"),
        ({"mqtt_client_cert": "CERT", "mqtt_url": "mqtts://b"}, "go together"),
        ({"mqtt_ca_file": "CA"}, "use mqtts://"),
    ],
)
def test_bad_tls_settings_name_the_fix(
    tmp_path: Path, extra: dict[str, str], words: str
) -> None:
    for key in ("mqtt_ca_file", "mqtt_client_cert"):
        if extra.get(key) in ("CA", "CERT"):
            (tmp_path / extra[key]).write_text("x")
            extra[key] = str(tmp_path / extra[key])
    with pytest.raises(ConfigError, match=words):
        load_settings(config(tmp_path, **extra))


def test_agent_check_never_prints_passwords(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edge_agent.cli import app

    path = config(tmp_path, mqtt_url="mqtts://cam-1:broker-pw@broker:8883",
                  cameras=[{"camera_id": "gate", "source": "rtsp://admin:cam-pw@10.0.0.5/s"}])
    result = CliRunner().invoke(app, ["check", "--offline", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "cam-1:***@broker" in result.output and "admin:***@10.0.0.5" in result.output
    assert "broker-pw" not in result.output and "cam-pw" not in result.output
