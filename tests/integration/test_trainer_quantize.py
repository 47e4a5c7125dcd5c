"""Static int8 quantization and the quantization gate, with real torch, ONNX and ORT."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from protocols import InputSpec, ModelVersionCreate
from scripts.synth_images import generate_dataset
from trainer import TrainingResult, load_settings, run_training
from trainer.data import scan_image_folder
from trainer.export import export_onnx
from trainer.inference import OnnxModel
from trainer.model import PetNet
from trainer.preprocess import decode_image, preprocess
from trainer.quantize import compare_latency, decide, quantize_int8
from trainer.stages.quantize import calibration_batches


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """An fp32 PetNet (BN statistics from real images) and its int8 model."""
    root = tmp_path_factory.mktemp("quant")
    generate_dataset(root / "data", n_per_class=10, seed=5, size=48)
    spec = InputSpec(width=32, height=32)
    scan = scan_image_folder(root / "data", 0, 0.2, 0.2)
    batches = calibration_batches(scan.records, spec, 20, batch_size=10)
    torch.manual_seed(0)
    model = PetNet(2, 0.35, 32, arch="compact")
    model.train()
    with torch.no_grad():  # give BatchNorm real running statistics
        for batch in batches * 3:
            model(torch.from_numpy(batch))
    fp32 = export_onnx(model.eval(), root / "model.onnx", 32)
    int8 = quantize_int8(fp32, root / "model.int8.onnx", batches)
    return fp32, int8, np.concatenate(batches)


def test_int8_model_is_qdq_keeps_both_outputs_and_tracks_fp32(
    models: tuple[Path, Path, np.ndarray],
) -> None:
    fp32, int8, x = models
    proto = onnx.load(str(int8))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert [o.name for o in proto.graph.output] == ["logits", "embedding"]
    assert int8.stat().st_size < 0.6 * fp32.stat().st_size
    f_logits, f_emb = OnnxModel(fp32).run(x)
    q_logits, q_emb = OnnxModel(int8).run(x)
    assert q_logits.shape == f_logits.shape and q_emb.shape == f_emb.shape
    assert np.corrcoef(f_emb.ravel(), q_emb.ravel())[0, 1] > 0.9


def test_per_channel_weights(models: tuple[Path, Path, np.ndarray]) -> None:
    proto = onnx.load(str(models[1]))
    inits = {i.name: i for i in proto.graph.initializer}
    per_channel = [
        n for n in proto.graph.node
        if n.op_type == "DequantizeLinear" and n.input[1] in inits
        and len(inits[n.input[1]].dims) == 1 and inits[n.input[1]].dims[0] > 1
    ]
    assert per_channel  # weight scales are vectors (one per output channel)


def test_latency_is_measured_for_both(models: tuple[Path, Path, np.ndarray]) -> None:
    fp32, int8, x = models
    fp32_ms, int8_ms = compare_latency(fp32, int8, x[:1], threads=1, rounds=3, runs_per_round=2)
    assert fp32_ms > 0 and int8_ms > 0


def _gate(**over: float) -> dict[str, float]:
    base: dict[str, float] = dict(
        fp32_accuracy=0.95, int8_accuracy=0.945, fp32_latency_ms=2.0, int8_latency_ms=1.5,
        fp32_size_bytes=4000, int8_size_bytes=1200, budget_points=1.0, max_latency_ratio=1.0,
        latency_batch=1, latency_threads=1, test_samples=200,
    )
    return {**base, **over}


def test_gate_passes_within_budget_and_not_slower() -> None:
    g = decide(**_gate())  # type: ignore[arg-type]
    assert g.ship_int8 and g.reason.startswith("int8 primary")
    assert g.accuracy_drop_points == pytest.approx(0.5)
    assert g.latency_ratio == pytest.approx(0.75) and g.size_ratio == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"int8_accuracy": 0.93}, "exceeds the accuracy budget"),
        ({"budget_points": -1.0, "int8_accuracy": 0.95}, "exceeds the accuracy budget"),
        ({"int8_latency_ms": 2.5}, "slower"),
        ({"int8_accuracy": 0.90, "int8_latency_ms": 3.0}, "budget and is slower"),
    ],
)
def test_gate_refuses(over: dict[str, float], why: str) -> None:
    g = decide(**_gate(**over))  # type: ignore[arg-type]
    assert not g.ship_int8
    assert g.reason.startswith("fp32 primary") and why in g.reason


def _golden_matches(result: TrainingResult, path: Path) -> None:
    reg = result.registration
    session = OnnxModel(path)
    for golden in reg.golden_inputs:
        frame = decode_image(base64.b64decode(golden.image_png_b64))
        assert frame is not None
        logits, _ = session.run(preprocess(frame, reg.input)[None])
        np.testing.assert_allclose(logits[0], golden.expected_logits, atol=1e-5)


def _run(tmp: Path, **settings: object) -> TrainingResult:
    if not (tmp / "data").exists():
        generate_dataset(tmp / "data", n_per_class=16, seed=6, size=48)
    return run_training(
        load_settings(
            None, data_dir=tmp / "data", out_dir=tmp / f"out{len(list(tmp.iterdir()))}",
            input_size=32, width_mult=0.35, epochs=1, batch_size=16, val_fraction=0.25,
            test_fraction=0.25, device="cpu", golden_count=2, allow_weak_model=True, **settings,
        ),
        show_progress=False,
    )


@pytest.mark.slow
def test_pipeline_ships_int8_when_the_gate_passes_and_fp32_when_it_refuses(
    tmp_path: Path,
) -> None:
    shipped = _run(tmp_path, int8_budget_points=100.0, int8_max_latency_ratio=1000.0)
    refused = _run(tmp_path, int8_budget_points=-1.0)
    for result, primary in ((shipped, "int8"), (refused, "fp32")):
        reg = ModelVersionCreate.model_validate_json(result.registration_path.read_text())
        by_precision = {a.precision: a for a in reg.artifacts}
        assert set(by_precision) == {"fp32", "int8"}
        assert reg.primary_sha256 == by_precision[primary].sha256
        assert reg.primary_reason.startswith(f"{primary} primary")
        assert result.int8_primary is (primary == "int8")
        assert result.primary_path is not None
        _golden_matches(result, result.primary_path)  # goldens come from the primary
        assert {"int8_latency_ratio", "int8_size_ratio", "int8_accuracy_drop_points"} <= set(
            reg.metrics
        )
    assert shipped.int8_path is not None and shipped.primary_path == shipped.int8_path
    assert refused.primary_path == refused.model_path
