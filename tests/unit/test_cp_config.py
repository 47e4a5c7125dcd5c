"""Settings: defaults, TOML file, environment precedence, loud errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.config import ClientSettings, ControlPlaneSettings
from control_plane.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PARKWATCH_CONFIG", "PARKWATCH_PORT", "PARKWATCH_API_TOKEN", "PARKWATCH_DATA_DIR",
                 "PARKWATCH_API_URL", "PARKWATCH_MQTT_URL", "PARKWATCH_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_derive_from_data_dir(tmp_path: Path) -> None:
    s = ControlPlaneSettings.load(data_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{(tmp_path / 'parkwatch.db').resolve()}"
    assert s.resolved_artifact_dir == tmp_path / "artifacts"
    assert s.resolved_public_url == "http://127.0.0.1:8000"
    assert s.mqtt_url is None
    assert s.broker_url == "mqtt://127.0.0.1:1883"
    assert s.agent_mqtt_url == s.broker_url


def test_every_field_has_a_description() -> None:
    for cls in (ControlPlaneSettings, ClientSettings):
        missing = [n for n, f in cls.model_fields.items() if not f.description]
        assert missing == [], f"{cls.__name__} fields without description: {missing}"


def test_toml_file_and_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text('port = 9100\nhost = "0.0.0.0"\napi_url = "http://cp:9100"\n')
    monkeypatch.setenv("PARKWATCH_CONFIG", str(cfg))
    monkeypatch.setenv("PARKWATCH_PORT", "9200")
    s = ControlPlaneSettings.load()
    assert (s.host, s.port) == ("0.0.0.0", 9200)  # env wins over the file
    assert ClientSettings.load().api_url == "http://cp:9100"  # the client reads the same file


def test_unknown_key_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        ControlPlaneSettings.load(cfg)


def test_a_bad_broker_url_is_refused_at_load_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text('mqtt_url = "http://svc:hunter2@broker:1883"\n')
    with pytest.raises(ConfigError, match=r"mqtt_url: .*must start with mqtt://") as err:
        ControlPlaneSettings.load(cfg)
    assert "hunter2" not in str(err.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ControlPlaneSettings.load(tmp_path / "nope.toml")


def test_client_token_falls_back_to_admin_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "admin.token").write_text("pw_secret\n")
    assert ClientSettings.load(data_dir=tmp_path).token() == "pw_secret"
    monkeypatch.setenv("PARKWATCH_API_TOKEN", "pw_env")
    assert ClientSettings.load(data_dir=tmp_path).token() == "pw_env"
    monkeypatch.delenv("PARKWATCH_API_TOKEN")
    assert ClientSettings.load(data_dir=tmp_path / "empty").token() is None
