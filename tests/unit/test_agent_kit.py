"""The agent test kit's own checks (``tests/agent_kit.py``, ``tests/agent_models.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.agent_kit import make_release
from tests.agent_models import build_model, golden_images, run_model


def test_model_scores_bright_frames_as_dog() -> None:
    images = golden_images()
    assert run_model(build_model(), images["bright"]).argmax() == 1
    assert run_model(build_model(), images["dark"]).argmax() == 0
    assert np.isnan(run_model(build_model(nan=True), images["dark"])).all()


def test_release_is_signed_and_consistent(tmp_path: Path) -> None:
    from protocols import generate_signing_key, verify_manifest
    from protocols.signing import key_id_of

    key = generate_signing_key()
    release = make_release(key, "r1")
    manifest = verify_manifest(release.signed, {key_id_of(key.public_key()): key.public_key()})
    assert manifest.artifact.size_bytes == len(release.model)


def test_nan_above_model_is_fine_on_dark_and_nan_on_bright() -> None:
    model = build_model(nan_above=0.5)
    images = golden_images()
    assert np.isfinite(run_model(model, images["dark"])).all()
    np.testing.assert_allclose(run_model(model, images["dark"]),
                               run_model(build_model(), images["dark"]))
    assert np.isnan(run_model(model, images["bright"])).all()


def test_padded_model_is_big_and_still_runs() -> None:
    model = build_model(pad_bytes=300_000)
    assert len(model) > 300_000
    assert run_model(model, golden_images()["bright"]).argmax() == 1
