"""The shared settings toolkit: one loader and one error format for every component, and
the generated settings reference (docs/settings.md) kept current."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from control_plane.config import ControlPlaneSettings
from control_plane.errors import ConfigError as ControlPlaneConfigError
from edge_agent.config import AgentSettings
from edge_agent.errors import ConfigError as AgentConfigError
from parkwatch_cli import app
from protocols.settings import TomlSettings
from scripts.settings_reference import DOC, document
from trainer.config import TrainerSettings
from trainer.errors import TrainerError

AGENT_REQUIRED = {"device_id": "cam-1", "control_plane_url": "http://cp:8000",
                  "api_token": "t", "mqtt_url": "mqtt://b:1883"}
COMPONENTS = [
    (ControlPlaneSettings, ControlPlaneConfigError, {}),
    (AgentSettings, AgentConfigError, AGENT_REQUIRED),
    (TrainerSettings, TrainerError, {"data_dir": "/data"}),
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PARKWATCH_CONFIG", "PARKWATCH_PORT", "PARKWATCH_AGENT_WINDOW_SECONDS",
                 "PARKWATCH_TRAINER_EPOCHS"):
        monkeypatch.delenv(name, raising=False)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("cls", "error", "required"), COMPONENTS)
def test_every_component_loads_through_the_shared_toolkit(
    cls: type[TomlSettings], error: type[Exception], required: dict[str, str]
) -> None:
    assert issubclass(cls, TomlSettings)
    assert cls.config_error is error


@pytest.mark.parametrize(("cls", "error", "required", "typo", "meant"), [
    (*COMPONENTS[0], "prot", "port"),
    (*COMPONENTS[1], "window_second", "window_seconds"),
    (*COMPONENTS[2], "epoch", "epochs"),
])
def test_an_unknown_key_names_the_key_and_the_nearest_known_one(
    tmp_path: Path, cls: type[TomlSettings], error: type[Exception], required: dict[str, str],
    typo: str, meant: str,
) -> None:
    path = _toml(tmp_path, f"{typo} = 1\n")
    with pytest.raises(error) as err:
        cls.load(path, **required)
    message = str(err.value)
    assert "\n" not in message
    assert f"{typo}: unknown key: did you mean {meant!r}?" in message
    assert str(path) in message


def test_an_unknown_key_in_a_section_suggests_from_that_section(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[drift]\nmin_sample = 3\n")
    with pytest.raises(ControlPlaneConfigError, match=r"drift\.min_sample: unknown key: did "
                                                      r"you mean 'min_samples'\?"):
        ControlPlaneSettings.load(path)


@pytest.mark.parametrize(("cls", "error", "required", "env", "key"), [
    (*COMPONENTS[0], "PARKWATCH_PORT", "port"),
    (*COMPONENTS[1], "PARKWATCH_AGENT_WINDOW_SECONDS", "window_seconds"),
    (*COMPONENTS[2], "PARKWATCH_TRAINER_EPOCHS", "epochs"),
])
def test_a_bad_value_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type[TomlSettings], error: type[Exception],
    required: dict[str, str], env: str, key: str,
) -> None:
    monkeypatch.setenv(env, "-5")
    with pytest.raises(error, match=rf"^invalid .*: {key}: .*\(from {env}\)$"):
        cls.load(None, **required)


def test_a_bad_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 0\n")
    with pytest.raises(ControlPlaneConfigError, match=rf"port: .*\(in {path}\)$"):
        ControlPlaneSettings.load(path)


def test_a_missing_required_key_says_where_to_set_it(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'device_id = "cam-1"\n')
    with pytest.raises(AgentConfigError,
                       match=rf"mqtt_url: required: set it in {path} or in "
                             "PARKWATCH_AGENT_MQTT_URL"):
        AgentSettings.load(path)


@pytest.mark.parametrize(("cls", "error", "required"), COMPONENTS)
def test_a_file_that_is_not_toml_is_one_line(
    tmp_path: Path, cls: type[TomlSettings], error: type[Exception], required: dict[str, str]
) -> None:
    path = _toml(tmp_path, "port = = 1\n")
    with pytest.raises(error, match=rf"{path} is not valid TOML: .*line 1"):
        cls.load(path, **required)


def test_none_overrides_leave_the_file_and_environment_in_charge(tmp_path: Path) -> None:
    path = _toml(tmp_path, "port = 9100\n")
    assert ControlPlaneSettings.load(path, port=None).port == 9100
    assert ControlPlaneSettings.load(path, port=9200).port == 9200


@pytest.mark.parametrize("argv", [
    ["serve", "--config", "{cfg}"],
    ["agent", "check", "--config", "{cfg}"],
    ["train", "--data", "{dir}", "--config", "{cfg}"],
])
def test_each_cli_prints_one_line_and_no_traceback(tmp_path: Path, argv: list[str]) -> None:
    cfg = _toml(tmp_path, "no_such_key = 1\n")
    args = [a.format(cfg=cfg, dir=tmp_path) for a in argv]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "no_such_key: unknown key" in lines[0]
    assert "Traceback" not in result.output


def test_the_settings_reference_is_current() -> None:
    text = document()
    assert DOC.read_text() == text, (
        "docs/settings.md is stale: run python scripts/settings_reference.py")
    for cls in (ControlPlaneSettings, AgentSettings, TrainerSettings):
        for name in cls.model_fields:
            assert f"| `{name}` |" in text
