"""Agent settings: TOML + environment, validated early, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import AgentSettings, CameraConfig, load_settings
from edge_agent.errors import ConfigError
from protocols import generate_signing_key
from tests.agent_kit import write_config


def config(tmp_path: Path, **extra: object) -> Path:
    cams = extra.pop("cameras", [{"camera_id": "gate", "source": "0"}])
    mqtt_url = str(extra.pop("mqtt_url", "mqtt://127.0.0.1:1883"))
    return write_config(tmp_path / "agent.toml", mqtt_url=mqtt_url,
                        server_url="http://127.0.0.1:8000", key=generate_signing_key(),
                        data_dir=tmp_path / "data", cameras=cams, **extra)  # type: ignore[arg-type]


def test_valid_file_loads(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path))
    assert settings.device_id == "park1-gate"
    assert settings.cameras[0].kind == "device"
    assert len(settings.trusted_keys()) == 1
    assert settings.window_seconds == 60.0 and settings.metrics_port is None


def test_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKWATCH_AGENT_WINDOW_SECONDS", "2.5")
    settings = load_settings(config(tmp_path, window_seconds=30))
    assert settings.window_seconds == 2.5
    assert "window_seconds" in settings.model_fields_set


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"mqtt_url": "http://broker"}, "mqtt_url"),
        ({"device_id": "Bad Id"}, "device_id"),
        ({"control_plane_url": "ftp://x"}, "control_plane_url"),
        ({"trusted_public_keys": ["not a pem"]}, "trusted_public_keys"),
        ({"cameras": [{"camera_id": "a", "source": "0", "sample_fps": 0}]}, "cameras.0.sample_fps"),
        ({"cameras": [{"camera_id": "a", "source": "0"}, {"camera_id": "a", "source": "1"}]},
         "cameras"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_errors_name_the_bad_key(tmp_path: Path, extra: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=rf"\b{key}\b"):
        load_settings(config(tmp_path, **extra))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("device_id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)


def test_every_setting_is_described_and_in_the_agent_doc() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "agent.md").read_text()
    for cls in (AgentSettings, CameraConfig):
        missing = [n for n, f in cls.model_fields.items() if not f.description]
        assert missing == [], f"{cls.__name__} fields without description: {missing}"
        undocumented = [n for n in cls.model_fields if f"| `{n}` |" not in doc]
        assert undocumented == [], f"docs/agent.md lacks {cls.__name__}: {undocumented}"
