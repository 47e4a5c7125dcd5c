"""Trainer settings: TOML file, environment, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer import TrainerError, load_settings


def test_precedence_overrides_then_env_then_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "trainer.toml"
    config.write_text('data_dir = "/data"\nepochs = 3\nseed = 9\nlr = 0.01\n')
    monkeypatch.setenv("PARKWATCH_TRAINER_EPOCHS", "7")
    monkeypatch.setenv("PARKWATCH_TRAINER_SEED", "5")
    s = load_settings(config, seed=1, input_size=None)
    assert s.data_dir == Path("/data")
    assert s.lr == 0.01  # from the file
    assert s.epochs == 7  # env beats the file
    assert s.seed == 1  # an override beats env
    assert s.input_size == 64  # None overrides are ignored (the default stays)


def test_unknown_key_and_bad_value_are_named(tmp_path: Path) -> None:
    config = tmp_path / "trainer.toml"
    config.write_text('data_dir = "/data"\nepoch = 3\n')
    with pytest.raises(TrainerError, match="epoch"):
        load_settings(config)
    with pytest.raises(TrainerError, match="device"):
        load_settings(None, data_dir="/d", device="tpu")
    with pytest.raises(TrainerError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_every_field_is_described() -> None:
    from trainer import TrainerSettings

    missing = [n for n, f in TrainerSettings.model_fields.items() if not f.description]
    assert not missing


def test_hyperparameters_hold_no_paths_or_secrets() -> None:
    s = load_settings(None, data_dir="/d", api_token="secret")
    hp = s.hyperparameters()
    assert "api_token" not in hp and "data_dir" not in hp and hp["seed"] == 0


def test_regions_needs_the_lite0_probe() -> None:
    with pytest.raises(TrainerError, match="regions trains the linear probe of lite0"):
        load_settings(None, data_dir="/d", regions=True)
    # The top trains on cached activations; "full" would need every image's every pass.
    with pytest.raises(TrainerError, match="finetune = none, head or last_blocks"):
        load_settings(None, data_dir="/d", arch="lite0", finetune="full", regions=True)
    assert load_settings(None, data_dir="/d", arch="lite0", regions=True).regions
    for part in ("head", "last_blocks"):
        assert load_settings(None, data_dir="/d", arch="lite0", finetune=part,
                             regions=True).finetune == part
