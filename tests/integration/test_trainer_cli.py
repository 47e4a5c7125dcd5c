"""``parkwatch train``: the trainer's Typer app merged into a root app, as parkwatch_cli does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from scripts.synth_images import generate_dataset
from trainer.cli import app as trainer_app


def _root() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(trainer_app)  # merged: the user types `parkwatch train ...`

    @root.command()
    def version() -> None:  # a second command, so `train` is a subcommand as in parkwatch
        typer.echo("0")

    return root


def test_a_missing_data_folder_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _root(), ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert "Traceback" not in result.output


def test_regions_without_lite0_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _root(), ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--regions"]
    )
    assert result.exit_code == 1
    assert "regions trains the linear probe of lite0" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 2


@pytest.mark.slow
def test_train_command_with_a_config_file(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "data", n_per_class=14, seed=4, size=48)
    config = tmp_path / "trainer.toml"
    config.write_text(
        "width_mult = 0.35\nbatch_size = 16\nval_fraction = 0.25\ntest_fraction = 0.25\n"
        'device = "cpu"\nmodel_name = "petnet-test"\n'
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        _root(),
        ["train", "--data", str(tmp_path / "data"), "--out", str(out), "--epochs", "1",
         "--input-size", "32", "--config", str(config), "--seed", "3", "--quiet",
         "--search", "2", "--no-quantize",
         # One epoch on 28 images: the quality gate may refuse it; this test is the CLI's.
         "--allow-weak-model"],
    )
    assert result.exit_code == 0, result.output
    assert "dataset version" in result.output and "not registered" in result.output
    registration = json.loads((out / "registration.json").read_text())
    assert registration["model_name"] == "petnet-test"
    assert registration["input"]["width"] == 32
    hyperparameters = registration["lineage"]["hyperparameters"]
    assert hyperparameters["seed"] == 3
    assert hyperparameters["search_trials"] == 2
    report = json.loads((out / "report.json").read_text())
    assert [t["trial"] for t in report["search"]["trials"]] == [0, 1]
    assert hyperparameters["lr"] == report["search"]["best_params"]["lr"]
    assert [a["precision"] for a in registration["artifacts"]] == ["fp32"]
    assert "data validation" in result.output and "quality gate" in result.output
    metrics = registration["metrics"]
    assert metrics["quality_gate_passed"] == 1.0 or metrics["weak_model_allowed"] == 1.0
