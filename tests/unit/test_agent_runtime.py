"""ModelRuntime: preprocessing formula, smoke test, non-finite outputs, session options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.errors import ModelError
from edge_agent.runtime import ModelRuntime
from protocols import InputSpec, generate_signing_key
from tests.agent_kit import make_release
from tests.agent_models import build_model, reference_preprocess


def runtime_for(tmp_path: Path, model: bytes | None = None, golden: bytes | None = None,
                spec: InputSpec | None = None) -> ModelRuntime:
    release = make_release(generate_signing_key(), "r1", model, golden)
    manifest = release.manifest
    if spec is not None:
        manifest = manifest.model_copy(update={"input": spec})
    path = tmp_path / "model.onnx"
    path.write_bytes(release.model)
    return ModelRuntime(path, manifest, intra_op_threads=1)


@pytest.mark.parametrize("color_order", ["RGB", "BGR"])
def test_preprocess_matches_the_manifest_formula(tmp_path: Path, color_order: str) -> None:
    spec = InputSpec(width=32, height=24, color_order=color_order, mean=(0.1, 0.2, 0.3),
                     std=(0.5, 0.25, 0.2))
    runtime = runtime_for(tmp_path, spec=spec)
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)
    got = runtime.preprocess(bgr)
    expected = reference_preprocess(np.ascontiguousarray(bgr[..., ::-1]), spec)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_preprocess_reuses_its_buffer(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    frame = np.zeros((48, 64, 3), np.uint8)
    assert runtime.preprocess(frame) is runtime.preprocess(frame + 1)


def test_infer_gives_calibrated_probabilities_and_embedding(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    result = runtime.infer(np.full((48, 64, 3), 220, np.uint8))
    assert runtime.labels[result.top] == "dog"
    assert result.probs.sum() == pytest.approx(1.0, abs=1e-6)
    assert result.confidence == pytest.approx(float(result.probs.max()))
    assert result.embedding.shape == (3,)
    assert result.image.shape == (24, 32, 3)


def test_smoke_test_passes_for_the_model_it_was_made_for(tmp_path: Path) -> None:
    runtime_for(tmp_path).smoke_test()


def test_smoke_test_fails_for_another_model(tmp_path: Path) -> None:
    other = build_model()
    import onnx
    from onnx import numpy_helper

    m = onnx.load_from_string(other)
    m.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.array([0.5, 0.0], np.float32), "B"))
    runtime = runtime_for(tmp_path, model=m.SerializeToString(), golden=build_model())
    with pytest.raises(ModelError, match="smoke test failed on golden input"):
        runtime.smoke_test()


def test_nan_outputs_raise(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, model=build_model(nan=True), golden=build_model())
    with pytest.raises(ModelError, match="non-finite"):
        runtime.infer(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ModelError, match="non-finite"):
        runtime.smoke_test()


def test_a_model_without_the_named_outputs_is_refused(tmp_path: Path) -> None:
    release = make_release(generate_signing_key(), "r1")
    manifest = release.manifest.model_copy(
        update={"outputs": release.manifest.outputs.model_copy(update={"logits": "scores"})})
    path = tmp_path / "model.onnx"
    path.write_bytes(release.model)
    with pytest.raises(ModelError, match="no output 'scores'"):
        ModelRuntime(path, manifest, 1)


def test_idle_pool_threads_do_not_spin() -> None:
    from edge_agent.runtime import session_options

    opts = session_options(2)
    assert opts.intra_op_num_threads == 2
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
