"""Test kit for regions mode: a colour classifier built in code and park clips with moving
shapes, written as real MJPG video and read back with OpenCV.

The model (cat / dog / other) classifies a crop by its mean colour: red is a cat, blue a
dog, green or grey "other" (a person, the lawn). It is exact on the clips' shapes, so
the tests check the agent's regions, tracks and counts, not a model's mistakes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from onnx import TensorProto, helper, numpy_helper

from protocols import (
    ArtifactRef,
    GoldenInput,
    InputSpec,
    OutputSpec,
    ReleaseManifest,
    sign_manifest,
)
from tests.agent_kit import Release
from tests.agent_models import profile, reference_preprocess

COLOUR_LABELS = ["cat", "dog", "other"]
COLOUR_SPEC = InputSpec(width=32, height=32)
RED, BLUE, GREEN = (40, 40, 210), (230, 40, 20), (50, 190, 50)  # BGR: cat, dog, person


def build_colour_model(batch: int | str = "N", gain: float = 60.0, margin: float = 2.0
                       ) -> bytes:
    """input [N,3,32,32] -> mean colour (the embedding) -> logits for cat, dog, other.

    On the mean pixel colour m (R, G, B in 0-1): cat = gain (R - G) - margin,
    dog = gain (B - G) - margin, other = 0: grey and green (the lawn, a person in a green
    coat) are "other". Written on the normalised input, so the weights fold in the
    spec's mean and std. ``batch=1``: a model without a dynamic batch axis.
    """
    spec = COLOUR_SPEC
    a = gain * np.array([[1.0, -1.0, 0.0], [0.0, -1.0, 1.0], [0.0, 0.0, 0.0]],
                        np.float64).T  # rows R, G, B; columns cat, dog, other
    std, mean = np.array(spec.std), np.array(spec.mean)
    weights = (a * std[:, None]).astype(np.float32)
    bias = (mean @ a + np.array([-margin, -margin, 0.0])).astype(np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
        helper.make_node("MatMul", ["embedding", "W"], ["scores"]),
        helper.make_node("Add", ["scores", "B"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "colour",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       [batch, 3, spec.height, spec.width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 3])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def colour_manifest(model: bytes, background: Sequence[str] = ("other",),
                    min_confidence: float = 0.6, release_id: str = "colour-1"
                    ) -> ReleaseManifest:
    return ReleaseManifest(
        release_id=release_id, model_name="colour", model_version="1", labels=COLOUR_LABELS,
        input=COLOUR_SPEC, outputs=OutputSpec(embedding_dim=3),
        artifact=ArtifactRef(sha256=hashlib.sha256(model).hexdigest(), size_bytes=len(model)),
        reference_profile=profile().model_copy(
            update={"class_counts": {lb: 1.0 for lb in COLOUR_LABELS}}),
        golden_inputs=_goldens(model),
        background_labels=list(background), animal_min_confidence=min_confidence,
    )


def _goldens(model: bytes) -> list[GoldenInput]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out = []
    for name, bgr in (("red", RED), ("grey", (128, 128, 128))):
        rgb = np.full((COLOUR_SPEC.height, COLOUR_SPEC.width, 3), bgr[::-1], np.uint8)
        (logits,) = session.run(["logits"], {"input": reference_preprocess(rgb, COLOUR_SPEC)})
        ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        assert ok
        out.append(GoldenInput(name=name, image_png_b64=base64.b64encode(png).decode(),
                               expected_logits=logits[0].tolist(), atol=1e-3))
    return out


def colour_release(key: Ed25519PrivateKey, release_id: str = "colour-1", **kw: object
                   ) -> Release:
    model = build_colour_model()
    manifest = colour_manifest(model, release_id=release_id, **kw)  # type: ignore[arg-type]
    return Release(release_id, model, sign_manifest(manifest, key), manifest)


# -- clips -------------------------------------------------------------------------------------
Path2D = Callable[[int], tuple[float, float] | None]  # frame -> centre (pixels), None: away


@dataclass(frozen=True)
class Thing:
    """A coloured ellipse (width x height pixels) that moves along ``at``; with ``shade``
    it is a shadow instead: the scene darkened to that fraction, its colours kept."""

    colour: tuple[int, int, int]
    size: tuple[int, int]
    at: Path2D
    shade: float | None = None


def resting(walk_in: tuple[int, int], rest_until: int, leave_by: int, x0: float, x_rest: float,
            x1: float, y: float) -> Path2D:
    """Walks in from x0 to x_rest over ``walk_in`` frames, lies still until ``rest_until``,
    then walks out to x1 by ``leave_by``."""
    come, go = crossing(*walk_in, x0, x_rest, y), crossing(rest_until, leave_by, x_rest, x1, y)

    def at(i: int) -> tuple[float, float] | None:
        if walk_in[1] <= i < rest_until:
            return x_rest, y
        return come(i) or go(i)
    return at


def crossing(start: int, stop: int, x0: float, x1: float, y: float) -> Path2D:
    """In view from frame ``start`` to ``stop`` (exclusive), moving from x0 to x1."""
    def at(i: int) -> tuple[float, float] | None:
        if not start <= i < stop:
            return None
        return x0 + (x1 - x0) * (i - start) / max(1, stop - start - 1), y
    return at


def lawn(width: int, height: int, seed: int = 3) -> np.ndarray:
    """A static textured grey-green background (a lawn with paths), BGR."""
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.normal(0, 1, (height // 8, width // 8)).astype(np.float32),
                       (width, height), interpolation=cv2.INTER_CUBIC)
    base = np.empty((height, width, 3), np.float32)
    base[...] = (95, 125, 105)  # a green lawn: colour, so the condition reads "day"
    base += noise[..., None] * 10
    cv2.line(base, (0, height // 3), (width, height // 2), (150, 150, 150), 6)
    return np.clip(base, 0, 255).astype(np.uint8)


def frames(things: Sequence[Thing], n: int, size: tuple[int, int] = (320, 240),
           seed: int = 0) -> Iterator[np.ndarray]:
    """The clip's frames: the lawn, the things where they are, a little sensor noise."""
    rng = np.random.default_rng(seed)
    background = lawn(*size)
    for i in range(n):
        img = background.copy()
        for thing in things:
            where = thing.at(i)
            if where is None:
                continue
            centre, axes = (round(where[0]), round(where[1])), (thing.size[0] // 2,
                                                                 thing.size[1] // 2)
            if thing.shade is None:
                cv2.ellipse(img, centre, axes, 0, 0, 360, thing.colour, -1)
                continue
            mask = np.zeros(img.shape[:2], np.uint8)
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
            img[mask > 0] = (img[mask > 0] * thing.shade).astype(np.uint8)
        noisy = img.astype(np.int16) + rng.integers(-3, 4, img.shape, dtype=np.int16)
        yield np.clip(noisy, 0, 255).astype(np.uint8)


def write_clip(path: Path, things: Sequence[Thing], n: int, fps: float = 10.0,
               size: tuple[int, int] = (320, 240)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for img in frames(things, n, size):
        writer.write(img)
    writer.release()
    return path


def read_clip(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    return out
