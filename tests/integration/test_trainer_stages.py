"""Each trainer stage run alone on a context that holds only its inputs (real files, real
torch, real ONNX Runtime): scan, split, export, quantize, evaluate, profile, write.

``register`` against an HTTP control plane: tests/integration/test_trainer_registry.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from protocols import ModelVersionCreate
from trainer import TrainerError, load_settings
from trainer.config import TrainerSettings
from trainer.inference import OnnxModel
from trainer.model import PetNet
from trainer.preprocess import decode_image, preprocess
from trainer.runner import RunContext, StageOutput, run_stages
from trainer.stages import STAGES
from trainer.stages.data import Scanned, Splits, scan_stage, split_stage
from trainer.stages.evaluate import Evaluated, evaluate_stage
from trainer.stages.export import Exported, export_stage
from trainer.stages.profile import Profiled, profile_stage
from trainer.stages.quantize import Quantized, primary_artifact, quantize_stage
from trainer.stages.train import Trained
from trainer.stages.write import write_stage


def _tiny_folder(root: Path, n_per_class: int = 20, size: int = 40) -> Path:
    """Discs vs squares on grey, a truncated file and a slices.json."""
    rng = np.random.default_rng(3)
    for label in ("disc", "square"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            img = np.full((size, size, 3), int(rng.integers(60, 200)), np.uint8)
            r = int(rng.integers(size // 6, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            colour = [int(c) for c in rng.integers(0, 256, 3)]
            if label == "disc":
                cv2.circle(img, (cx, cy), r, colour, -1)
            else:
                cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
            cv2.imwrite(str(root / label / f"{label}_{i:03d}.png"), img)
    good = (root / "disc" / "disc_000.png").read_bytes()
    (root / "disc" / "broken.png").write_bytes(good[: len(good) // 3])
    (root / "slices.json").write_text(json.dumps({"first": ["*_00*"]}))
    return root


def _settings(data: Path, out: Path, **over: object) -> TrainerSettings:
    return load_settings(
        None, data_dir=data, out_dir=out, input_size=32, width_mult=0.35, epochs=1,
        batch_size=16, val_fraction=0.25, test_fraction=0.25, device="cpu", golden_count=2,
        profile_images=10, shifts=[], allow_weak_model=True, **over,  # one epoch: any model
    )


def _alone(settings: TrainerSettings, *outputs: StageOutput) -> RunContext:
    """A context holding only ``outputs``: what one stage needs, nothing else."""
    return RunContext(settings=settings).with_outputs(*outputs)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_folder(tmp_path_factory.mktemp("stages") / "data")


@pytest.fixture(scope="module")
def ran(data: Path) -> RunContext:
    """scan -> profile once, int8 forced primary; the tests take their inputs from here."""
    settings = _settings(data, data.parent / "out", int8_budget_points=100.0,
                         int8_max_latency_ratio=1000.0)
    wanted = {"scan", "split", "train", "export", "quantize", "evaluate", "judge", "profile"}
    return run_stages([s for s in STAGES if s.name in wanted], RunContext(settings=settings))


def test_scan_then_split_alone_on_a_tiny_folder(data: Path, tmp_path: Path) -> None:
    settings = _settings(data, tmp_path / "out")
    scanned = scan_stage(_alone(settings))
    assert [r.rel_path for r in scanned.scan.rejected] == ["disc/broken.png"]
    assert scanned.figures()["images"] == 40 and scanned.figures()["rejected"] == 1
    splits = split_stage(_alone(settings, scanned))
    names = [r.rel_path for part in (splits.train, splits.val, splits.test) for r in part]
    assert sorted(names) == sorted(r.rel_path for r in scanned.scan.records)  # disjoint, whole
    assert {r.split for r in splits.test} == {"test"} and splits.labels == ["disc", "square"]
    assert splits.spec.width == 32
    written = json.loads((tmp_path / "out" / "data_validation.json").read_text())
    assert written == json.loads(json.dumps(splits.validation))
    assert "1 file(s) rejected and excluded" in str(splits.figures()["validation"])


def test_a_few_mined_negatives_are_enough_for_a_regions_model(tmp_path: Path) -> None:
    """An other/ folder of a few confirmed negatives adds to the clips' "other" class: a
    regions split takes it however few; a whole-frame model still needs its minimum."""
    data = _tiny_folder(tmp_path / "data")
    (data / "other").mkdir()
    for i in range(3):
        cv2.imwrite(str(data / "other" / f"sample-{i}.jpg"), np.full((32, 32, 3), 90 + i,
                                                                     np.uint8))
    regions = _settings(data, tmp_path / "out", arch="lite0", regions=True, finetune="none")
    splits = split_stage(_alone(regions, scan_stage(_alone(regions))))
    assert sorted(splits.labels) == ["disc", "other", "square"]
    assert sum(r.label == "other" for r in splits.train + splits.val + splits.test) == 3
    whole = _settings(data, tmp_path / "out2")
    with pytest.raises(TrainerError, match="too few images"):
        split_stage(_alone(whole, scan_stage(_alone(whole))))


def test_split_without_a_scan_says_what_it_needs(data: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match="needs Scanned"):
        split_stage(_alone(_settings(data, tmp_path)))


@pytest.mark.slow
def test_train_saves_a_checkpoint_that_reloads(ran: RunContext) -> None:
    trained = ran[Trained]
    ckpt = torch.load(trained.checkpoint_path, weights_only=True)
    assert ckpt["labels"] == ["disc", "square"]
    assert ckpt["dataset_version"] == ran[Scanned].scan.version
    model = PetNet(2, ckpt["width_mult"], ckpt["input_size"], arch=ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    assert trained.figures()["epochs_run"] == 1


@pytest.mark.slow
def test_export_alone_checks_parity_and_drops_an_old_int8(ran: RunContext, tmp_path: Path) -> None:
    (tmp_path / "model.int8.onnx").write_bytes(b"left by an earlier run")
    ctx = _alone(ran.settings.model_copy(update={"out_dir": tmp_path}),
                 ran[Scanned], ran[Splits], ran[Trained])
    exported = export_stage(ctx)
    assert exported.model_path == tmp_path / "model.onnx"
    assert not (tmp_path / "model.int8.onnx").exists()
    assert 0 <= exported.parity.max_abs_diff <= ran.settings.parity_atol
    assert exported.parity.samples == len(ran[Splits].val)
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(exported.model_path)).metadata_props}
    assert meta["parkwatch.labels"] == ["disc", "square"]


@pytest.mark.slow
@pytest.mark.parametrize(("budget", "ratio", "primary"),
                         [(100.0, 1000.0, "int8"), (-1.0, 1000.0, "fp32")])
def test_quantize_alone_and_the_gates_decision(
    ran: RunContext, tmp_path: Path, budget: float, ratio: float, primary: str
) -> None:
    settings = ran.settings.model_copy(update={
        "out_dir": tmp_path, "int8_budget_points": budget, "int8_max_latency_ratio": ratio})
    ctx = _alone(settings, ran[Splits], ran[Exported])
    quantized = quantize_stage(ctx)
    assert quantized.int8_path == tmp_path / "model.int8.onnx" and quantized.int8_path.is_file()
    assert quantized.gate.ship_int8 is (primary == "int8")
    assert quantized.figures()["primary"] == primary
    assert len(quantized.int8_test.labels) == len(ran[Splits].test)
    chosen = primary_artifact(ctx.with_outputs(quantized))
    assert chosen.precision == primary and chosen.reason == quantized.gate.reason
    expected = quantized.int8_path if primary == "int8" else ran[Exported].model_path
    assert chosen.path == expected
    off = primary_artifact(ctx)  # no quantize output: the stage was skipped
    assert off.path == ran[Exported].model_path and "quantize = false" in off.reason


@pytest.mark.slow
def test_evaluate_alone_scores_the_primary_on_test_with_slices(ran: RunContext) -> None:
    splits = ran[Splits]
    fp32_only = evaluate_stage(_alone(ran.settings, splits, ran[Exported]))
    assert fp32_only.primary.precision == "fp32"
    assert fp32_only.test["samples"] == len(splits.test)
    assert fp32_only.calibration.samples == len(splits.val)
    assert set(fp32_only.slices) == {"first"}
    assert set(fp32_only.evaluation_sections()) == {"test", "slices"}
    with_int8 = ran[Evaluated]  # int8 passed the gate: its test predictions are reused
    assert with_int8.primary.precision == "int8"
    assert with_int8.test["accuracy"] == pytest.approx(ran[Quantized].gate.int8_accuracy)


@pytest.mark.slow
def test_profile_alone_on_a_few_images(ran: RunContext) -> None:
    profiled = profile_stage(_alone(ran.settings, ran[Splits], ran[Evaluated]))
    assert profiled.profile.sample_count == 10 == sum(profiled.profile.class_counts.values())
    assert len(profiled.goldens) == 2
    session = OnnxModel(ran[Evaluated].primary.path)
    for golden in profiled.goldens:  # the agent's path: decode the PNG, preprocess, run
        frame = decode_image(base64.b64decode(golden.image_png_b64))
        assert frame is not None
        logits, _ = session.run(preprocess(frame, ran[Splits].spec)[None])
        np.testing.assert_allclose(logits[0], golden.expected_logits, atol=1e-5)


@pytest.mark.slow
def test_write_then_read_back(ran: RunContext, tmp_path: Path) -> None:
    ctx = RunContext(  # every output and record of the run so far, a fresh folder
        settings=ran.settings.model_copy(update={"out_dir": tmp_path}),
        outputs=ran.outputs, records=ran.records,
    )
    written = write_stage(ctx)
    registration = ModelVersionCreate.model_validate_json(written.registration_path.read_text())
    assert registration == written.registration
    report_bytes = (tmp_path / "report.json").read_bytes()
    assert registration.report_sha256 == hashlib.sha256(report_bytes).hexdigest()
    assert report_bytes == written.report_bytes
    report = json.loads(report_bytes)
    assert [s["name"] for s in report["stages"]] == [r.name for r in ran.records]
    assert report["timings_s"] == ran.timings()
    assert set(report["evaluation"]) == {"test", "slices", "quality"}
    assert report["model"]["precision"] == "int8"
    sizes = {a.precision: a.size_bytes for a in registration.artifacts}
    assert sizes == {"fp32": ran[Exported].model_path.stat().st_size,
                     "int8": ran[Quantized].int8_path.stat().st_size}
    assert registration.reference_profile == ran[Profiled].profile
    text = (tmp_path / "report.md").read_text()
    assert "## Stages" in text and "| quantize | ok |" in text
    assert (tmp_path / "confusion_matrix.png").is_file()
