"""A regions-mode Lite0 end to end on a small fixed subset of the real photos.

The probe learns cat, dog and "other" from agent-shaped crops; the release it registers
says "other" is no animal and from what confidence an animal crop counts; the report
scores crops of park clips filmed from the test photos' cut-outs, by animal width and
condition, and the share of non-animal crops that would count as an animal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from control_plane.services.releases import build_manifest
from control_plane.store.models import ModelVersion
from protocols import CropSpec, ModelVersionCreate
from tests.integration.test_trainer_lite0 import copy_subset
from trainer import TrainingResult, load_settings, run_training
from trainer.cli import app as trainer_app
from trainer.recalibrate import recalibrate
from trainer.synth import CONDITIONS

pytestmark = pytest.mark.slow
SIZE = 96


@pytest.fixture(scope="module")
def regions_run(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    subset = copy_subset(tmp_path_factory.mktemp("photos") / "data", per_class=30)
    settings = load_settings(
        None, data_dir=subset, out_dir=tmp_path_factory.mktemp("regions-out"), arch="lite0",
        input_size=SIZE, device="cpu", calibration_images=16, shifts=[], golden_count=1,
        regions=True, region_crops_per_image=1, region_eval_seconds=8,
        region_calibration_crops=300,
        # The top's fine-tune on cached activations runs (one epoch); kept or not, the
        # release is one ONNX model through the same export and int8 gate.
        finetune="last_blocks", finetune_epochs=1,
        feature_cache_dir=tmp_path_factory.mktemp("features"),
        # 8 test photos cannot show that a probe beats guessing (p > 0.05 at 6 of 8); the
        # quality gate has its own tests, this one is about what a regions run writes.
        allow_weak_model=True,
    )
    return run_training(settings, show_progress=False)


def test_the_release_of_a_regions_model_drops_other(regions_run: TrainingResult) -> None:
    reg = ModelVersionCreate.model_validate_json(regions_run.registration_path.read_text())
    assert reg.labels == ["cat", "dog", "other"]
    assert reg.background_labels == ["other"]
    assert 0.0 <= reg.animal_min_confidence < 1.0
    assert reg.lineage.hyperparameters["regions"] is True
    # The control plane's manifest carries what the agent needs to drop non-animals.
    row = ModelVersion(model_id=1, number=1, version="1", primary_sha256=reg.primary_sha256,
                       spec=reg.model_dump(mode="json"), created_by="test")
    manifest = build_manifest("m-v1-0000", "m", row)
    assert manifest.background_labels == ["other"]
    assert manifest.animal_min_confidence == reg.animal_min_confidence
    assert manifest.crops == reg.crops


def test_the_top_fine_tune_runs_and_its_model_exports_as_one_onnx(
    regions_run: TrainingResult,
) -> None:
    report = json.loads(regions_run.report_path.read_text())
    tune = report["training"]["fine_tune"]
    assert tune["kept"] == (tune["tuned_crop_accuracy"] > tune["probe_crop_accuracy"])
    assert report["training"]["epochs_run"] == 2  # the probe, then one epoch of the top
    assert report["training"]["best_epoch"] == (2 if tune["kept"] else 1)
    assert report["parity"]["max_abs_diff"] <= report["parity"]["atol"]
    assert report["quantization"]["reason"]  # the int8 gate judged the (tuned) model
    graph = onnx.load(str(regions_run.out_dir / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]  # the whole network, image in


def test_report_scores_clip_crops_by_width_and_condition(regions_run: TrainingResult) -> None:
    regions = json.loads(regions_run.report_path.read_text())["evaluation"]["regions"]
    calibration = regions["calibration"]
    assert calibration["val_other_crops"] > 0
    # 300 held-out "other" crops cannot resolve 1 in 2500: none may pass.
    assert calibration["heldout_other_crops"] == 300 and calibration["resolved"] == 0.0
    assert calibration["heldout_false_animal_rate"] == 0.0 or \
        calibration["animal_min_confidence"] == 0.99
    report = json.loads(regions_run.report_path.read_text())
    assert report["calibration"]["fitted_on"] == "validation crops"
    assert report["calibration"]["samples"] > calibration["val_other_crops"]
    clips = regions["clips"]
    assert clips["animal_crops"] > 0 and clips["other_crops"] > 0
    assert set(clips["by_condition"]) <= set(CONDITIONS)
    assert sum(b["samples"] for b in clips["by_width"].values()) == clips["animal_crops"]
    # A probe on 40 photos tells park clutter from animals far better than chance.
    assert clips["false_animal_rate"] < 0.5
    assert clips["accuracy"] > 0.5
    assert regions_run.metrics["animal_min_confidence"] == calibration["animal_min_confidence"]


def test_a_trained_folder_recalibrates_without_retraining(
    regions_run: TrainingResult, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(regions_run.out_dir, folder)
    (folder / "registered.json").write_text("{}")  # as if the control plane had it
    # 30 non-animal regions an hour and 1 false animal: 1 in 30 of 300 crops may pass.
    figures = recalibrate(folder, region_calibration_crops=300,
                          region_other_regions_per_hour=30.0)
    assert figures["resolved"] == 1.0
    assert figures["heldout_false_animal_rate"] <= 1 / 30
    reg = ModelVersionCreate.model_validate_json((folder / "registration.json").read_text())
    report_bytes = (folder / "report.json").read_bytes()
    report = json.loads(report_bytes)
    assert reg.report_sha256 == hashlib.sha256(report_bytes).hexdigest()
    assert reg.animal_min_confidence == figures["animal_min_confidence"]
    assert reg.metrics["temperature"] == reg.outputs.temperature == \
        report["calibration"]["temperature"]
    assert report["settings"]["region_other_regions_per_hour"] == 30.0
    assert report["evaluation"]["regions"]["calibration"] == figures
    assert not (folder / "registered.json").exists()  # the registered version is not this


def test_recalibrate_cuts_the_held_out_crops_as_the_release_says(
    regions_run: TrainingResult, tmp_path: Path
) -> None:
    """A folder registered with ``crops.destreak`` (the weights trained without it) is
    calibrated on crops destreaked as its agents will cut them."""
    folder = tmp_path / "model"
    shutil.copytree(regions_run.out_dir, folder)
    path = folder / "registration.json"
    reg = ModelVersionCreate.model_validate_json(path.read_text())
    assert reg.crops == CropSpec()  # trained without it
    path.write_text(reg.model_copy(update={"crops": CropSpec(destreak=3)}).model_dump_json())
    recalibrate(folder, region_calibration_crops=300)
    report = json.loads((folder / "report.json").read_text())
    assert report["settings"]["region_destreak"] == 3
    assert ModelVersionCreate.model_validate_json(path.read_text()).crops == CropSpec(destreak=3)


def test_recalibrate_refuses_a_folder_without_a_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(trainer_app, ["recalibrate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    err = result.stderr
    assert err.startswith("error: ") and "parkwatch train" in err and len(err.splitlines()) == 1
