"""run_training end to end with real torch, real ONNX Runtime and real files (no mocks)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from protocols import ModelVersionCreate
from protocols.features import input_stats
from scripts.synth_images import generate_dataset
from trainer import ParityError, TrainerError, TrainingResult, load_settings, run_training
from trainer.data import ImageDataset, scan_image_folder
from trainer.export import check_parity
from trainer.inference import OnnxModel
from trainer.model import PetNet
from trainer.preprocess import decode_image, preprocess, read_image, resize_to_input

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    """One epoch on a small synthetic set with a corrupt file in it: the whole path, fast."""
    root = tmp_path_factory.mktemp("trainer")
    data = root / "data"
    generate_dataset(data, n_per_class=30, seed=1, size=64)
    good = next((data / "cat").iterdir()).read_bytes()
    (data / "cat" / "broken.jpg").write_bytes(good[: len(good) // 3])
    (data / "slices.json").write_text(json.dumps({"early": ["*_00000*"], "late": ["*_00002*"]}))
    settings = load_settings(
        None, data_dir=data, out_dir=root / "out", input_size=48, width_mult=0.35,
        epochs=1, batch_size=16, val_fraction=0.25, test_fraction=0.25, device="cpu",
        profile_images=20, allow_weak_model=True,  # one epoch: the path, not the model
    )
    return run_training(settings, show_progress=False)


def test_output_files_exist(tiny_run: TrainingResult) -> None:
    for path in (tiny_run.model_path, tiny_run.registration_path, tiny_run.report_path):
        assert path.is_file() and path.stat().st_size > 0
    assert tiny_run.out_dir / "model.onnx" == tiny_run.model_path
    assert tiny_run.registered_version is None


def test_registration_is_a_valid_model_version_create(tiny_run: TrainingResult) -> None:
    reg = ModelVersionCreate.model_validate_json(tiny_run.registration_path.read_text())
    assert reg == tiny_run.registration
    assert reg.labels == ["cat", "dog"]
    assert reg.input.width == reg.input.height == 48
    fp32 = next(a for a in reg.artifacts if a.precision == "fp32")
    assert fp32.size_bytes == tiny_run.model_path.stat().st_size
    assert reg.primary_sha256 in {a.sha256 for a in reg.artifacts}
    assert reg.primary_reason
    assert reg.lineage.dataset_version == tiny_run.dataset_version
    assert reg.lineage.hyperparameters["epochs_run"] == 1
    assert reg.outputs.temperature > 0
    profile = reg.reference_profile
    assert set(profile.input_stats) == {"brightness", "contrast", "sharpness", "saturation"}
    assert len(profile.embedding_axes) == len(profile.embedding_hists) == 4
    assert len(profile.embedding_mean) == reg.outputs.embedding_dim
    assert sum(profile.class_counts.values()) == profile.sample_count == 20  # profile_images
    assert sum(profile.confidence.counts) == profile.sample_count
    assert profile.confidence.edges[0] == pytest.approx(0.5)
    assert all(sum(h.counts) == profile.sample_count for h in profile.input_stats.values())


def test_report_names_the_rejected_file_and_the_split(tiny_run: TrainingResult) -> None:
    report = json.loads(tiny_run.report_path.read_text())
    assert [r["path"] for r in report["dataset"]["rejected"]] == ["cat/broken.jpg"]
    assert tiny_run.rejected_files == ["cat/broken.jpg"]
    assert report["dataset"]["version"] == tiny_run.dataset_version
    assert set(report["evaluation"]["test"]) >= {"accuracy", "per_class", "confusion_matrix"}
    assert "api_token" not in report["settings"]


def test_validation_and_readable_report_are_written(tiny_run: TrainingResult) -> None:
    out = tiny_run.out_dir
    validation = json.loads((out / "data_validation.json").read_text())
    assert validation["rejected"]["files"][0]["path"] == "cat/broken.jpg"
    report = json.loads(tiny_run.report_path.read_text())
    assert report["data_validation"] == validation
    assert tiny_run.report_md_path is not None
    text = tiny_run.report_md_path.read_text()
    for heading in ("## Test split", "## Calibration", "## Confusion matrix", "## Quantization"):
        assert heading in text
    assert "slice early" in text and "slice late" in text
    png = cv2.imread(str(out / "confusion_matrix.png"))
    assert png is not None and png.shape[0] > 100


def test_slices_roc_auc_and_ece_are_in_the_report(tiny_run: TrainingResult) -> None:
    evaluation = json.loads(tiny_run.report_path.read_text())["evaluation"]
    test = evaluation["test"]
    assert set(evaluation["slices"]) == {"early", "late"}
    assert sum(s["samples"] for s in evaluation["slices"].values()) <= test["samples"]
    assert evaluation["slices"]["early"]["samples"] > 0
    assert {"roc_auc", "roc_auc_per_class", "ece", "ece_uncalibrated"} <= set(test)


def test_onnx_model_has_the_contract_outputs(tiny_run: TrainingResult) -> None:
    proto = onnx.load(str(tiny_run.model_path))
    assert [o.name for o in proto.graph.output] == ["logits", "embedding"]
    assert [i.name for i in proto.graph.input] == ["input"]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param  # dynamic batch
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props}
    assert meta["parkwatch.labels"] == ["cat", "dog"]
    x = np.zeros((5, 3, 48, 48), np.float32)
    logits, embedding = OnnxModel(tiny_run.model_path).run(x)
    assert tiny_run.int8_path is not None
    q_logits, q_embedding = OnnxModel(tiny_run.int8_path).run(x)
    assert q_logits.shape == logits.shape and q_embedding.shape == embedding.shape
    assert logits.shape == (5, 2)
    assert embedding.shape == (5, tiny_run.registration.outputs.embedding_dim)


def test_parity_is_below_tolerance(tiny_run: TrainingResult) -> None:
    assert 0 <= tiny_run.parity_max_abs_diff <= 1e-3
    assert tiny_run.metrics["parity_max_abs_diff"] == tiny_run.parity_max_abs_diff


def test_golden_inputs_reproduce_through_the_agent_path(tiny_run: TrainingResult) -> None:
    """Decode the PNG as a camera frame (BGR), preprocess per the InputSpec, run, compare."""
    reg = tiny_run.registration
    assert tiny_run.primary_path is not None
    session = OnnxModel(tiny_run.primary_path)  # the agent smoke-tests the primary artifact
    assert len(reg.golden_inputs) == 4
    assert {g.name.split("-")[0] for g in reg.golden_inputs} == {"cat", "dog"}
    for golden in reg.golden_inputs:
        png = np.frombuffer(base64.b64decode(golden.image_png_b64), np.uint8)
        frame = decode_image(png.tobytes())
        assert frame is not None and frame.shape == (48, 48, 3)
        logits, _ = session.run(preprocess(frame, reg.input)[None])
        np.testing.assert_allclose(logits[0], golden.expected_logits, atol=golden.atol)
        np.testing.assert_allclose(logits[0], golden.expected_logits, atol=1e-5)


def test_golden_png_holds_rgb_in_the_right_order(tiny_run: TrainingResult) -> None:
    """The PNG decodes (as any viewer would) to the same picture as the source file."""
    reg = tiny_run.registration
    scan = scan_image_folder(tiny_run.registration_path.parent.parent / "data")
    by_name = {f"{r.label}-{r.sha256[:12]}": r for r in scan.records}
    golden = reg.golden_inputs[0]
    frame = decode_image(base64.b64decode(golden.image_png_b64))
    source = read_image(by_name[golden.name].path)
    np.testing.assert_array_equal(
        frame, cv2.resize(source, (48, 48), interpolation=cv2.INTER_LINEAR)
    )
    rgb = resize_to_input(source, reg.input)
    assert input_stats(rgb).shape == (4,)


def _torch_model(result: TrainingResult) -> PetNet:
    ckpt = torch.load(result.checkpoint_path, weights_only=True)
    model = PetNet(len(ckpt["labels"]), ckpt["width_mult"], ckpt["input_size"], arch=ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _val_batch(result: TrainingResult) -> np.ndarray:
    scan = scan_image_folder(result.registration_path.parent.parent / "data", 0, 0.25, 0.25)
    ds = ImageDataset(scan.split("val")[:8], result.registration.input)
    return np.stack([ds[i][0].numpy() for i in range(len(ds))])


def test_a_tampered_model_fails_the_parity_check(
    tiny_run: TrainingResult, tmp_path: Path
) -> None:
    model, batch = _torch_model(tiny_run), _val_batch(tiny_run)
    ok = check_parity(model, tiny_run.model_path, batch, atol=1e-3)
    assert ok.max_abs_diff == pytest.approx(tiny_run.parity_max_abs_diff, abs=1e-3)
    proto = onnx.load(str(tiny_run.model_path))
    for init in proto.graph.initializer:  # scale every weight tensor by 10 %
        weights = numpy_helper.to_array(init)
        if weights.ndim >= 2:
            init.CopyFrom(numpy_helper.from_array(weights * np.float32(1.1), init.name))
    tampered = tmp_path / "tampered.onnx"
    onnx.save(proto, str(tampered))
    with pytest.raises(ParityError, match="parity_atol") as err:
        check_parity(model, tampered, batch, atol=1e-3)
    assert isinstance(err.value, TrainerError)


def test_a_tolerance_below_the_measured_difference_fails(tiny_run: TrainingResult) -> None:
    model, batch = _torch_model(tiny_run), _val_batch(tiny_run)
    diff = check_parity(model, tiny_run.model_path, batch, atol=1.0).max_abs_diff
    if diff == 0.0:
        pytest.skip("torch and ONNX Runtime agree bit for bit on this machine")
    with pytest.raises(ParityError):
        check_parity(model, tiny_run.model_path, batch, atol=diff / 2)


def _easy_dataset(root: Path, n_per_class: int, size: int = 64) -> None:
    """An easy two-class set: warm-coloured discs vs cool-coloured squares on grey clutter.

    The point is that the pipeline learns and generalises to held-out files, quickly;
    how fast the network learns the hard synthetic animals is a benchmark matter.
    """
    rng = np.random.default_rng(11)
    for label in ("disc", "square"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            img = np.full((size, size, 3), int(rng.integers(60, 200)), np.uint8)
            for _ in range(3):  # label-free clutter
                x, y = (int(v) for v in rng.integers(0, size, 2))
                cv2.line(img, (x, y), (x + 20, y + 5), [int(c) for c in rng.integers(0, 256, 3)], 2)
            r = int(rng.integers(size // 6, size // 3))
            cx, cy = (int(v) for v in rng.integers(r, size - r, 2))
            warm = [int(rng.integers(lo, hi)) for lo, hi in ((0, 80), (60, 160), (180, 256))]  # BGR
            if label == "disc":
                cv2.circle(img, (cx, cy), r, warm, -1, cv2.LINE_AA)
            else:
                cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), warm[::-1], -1)
            img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / label / f"{label}_{i:04d}.jpg"), img)


def test_training_learns_well_above_chance(tmp_path: Path) -> None:
    _easy_dataset(tmp_path / "data", n_per_class=120)
    settings = load_settings(
        None, data_dir=tmp_path / "data", out_dir=tmp_path / "out", input_size=48,
        width_mult=0.5, epochs=6, batch_size=16, device="cpu", golden_count=2,
    )
    result = run_training(settings, show_progress=False)
    report = json.loads(result.report_path.read_text())
    assert report["evaluation"]["test"]["samples"] >= 25
    assert result.metrics["test_accuracy"] >= 0.85, report["training"]["history"]
