"""Test models for the agent tests: a tiny real ONNX model, the manifest's preprocessing
written the slow way, golden images and a reference profile.

``agent_kit`` signs releases of these models; tests import them from here.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from protocols import INPUT_STAT_NAMES, Histogram, InputSpec, ReferenceProfile

LABELS = ["empty", "dog"]
SPEC = InputSpec(width=32, height=24)


def build_model(nan: bool = False, bias: float = 0.0, nan_above: float | None = None,
                pad_bytes: int = 0) -> bytes:
    """input [N,3,H,W] -> GlobalAveragePool -> Flatten = embedding [N,3] -> MatMul+Add = logits.

    Bright frames score "dog", dark frames "empty". ``nan=True`` makes every logit NaN;
    ``nan_above`` makes the logits NaN only when the mean normalised input is above it
    (fine on dark golden inputs, NaN on bright camera frames). ``pad_bytes`` makes the
    file bigger (a doc string) so downloads take several chunks.
    """
    weights = np.array([[-1.0, 1.0]] * 3, np.float32)
    bias_values = np.array([np.nan, np.nan] if nan else [0.0, bias], np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1),
        helper.make_node("MatMul", ["embedding", "W"], ["scores"]),
    ]
    inits = [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias_values, "B")]
    if nan_above is None:
        nodes.append(helper.make_node("Add", ["scores", "B"], ["logits"]))
    else:
        nodes += [
            helper.make_node("Add", ["scores", "B"], ["clean"]),
            helper.make_node("ReduceMean", ["embedding"], ["level"], axes=[1], keepdims=1),
            helper.make_node("Greater", ["level", "T"], ["bright"]),
            helper.make_node("Where", ["bright", "NaN", "Zero"], ["poison"]),
            helper.make_node("Add", ["clean", "poison"], ["logits"]),
        ]
        inits += [numpy_helper.from_array(np.array(nan_above, np.float32), "T"),
                  numpy_helper.from_array(np.array(np.nan, np.float32), "NaN"),
                  numpy_helper.from_array(np.array(0.0, np.float32), "Zero")]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SPEC.height,
                                                                     SPEC.width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if pad_bytes:
        model.doc_string = "padding " * (pad_bytes // 8)
    return bytes(model.SerializeToString())


def reference_preprocess(rgb: np.ndarray, spec: InputSpec = SPEC) -> np.ndarray:
    """The manifest's formula written the slow, obvious way (what a trainer does)."""
    img = cv2.resize(rgb, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
    if spec.color_order == "BGR":
        img = img[..., ::-1]
    x = (img.astype(np.float32) * spec.scale - np.array(spec.mean, np.float32)) / np.array(
        spec.std, np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def run_model(model: bytes, rgb: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": reference_preprocess(rgb)})
    return np.asarray(logits[0])


def golden_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    h, w = SPEC.height, SPEC.width
    return {
        "dark": np.clip(rng.normal(40, 10, (h, w, 3)), 0, 255).astype(np.uint8),
        "bright": np.clip(rng.normal(210, 10, (h, w, 3)), 0, 255).astype(np.uint8),
    }


def profile() -> ReferenceProfile:
    stat_edges = {"brightness": (0, 255), "contrast": (0, 128), "sharpness": (0, 6),
                  "saturation": (0, 1)}
    return ReferenceProfile(
        sample_count=100,
        class_counts={"empty": 50, "dog": 50},
        confidence=Histogram(edges=list(np.linspace(0, 1, 11)), counts=[10.0] * 10),
        input_stats={n: Histogram(edges=list(np.linspace(*stat_edges[n], 9)), counts=[1.0] * 8)
                     for n in INPUT_STAT_NAMES},
        embedding_mean=[0.0, 0.0, 0.0],
        embedding_axes=[[0.57735, 0.57735, 0.57735], [0.70711, -0.70711, 0.0]],
        embedding_hists=[Histogram(edges=list(np.linspace(-3, 3, 7)), counts=[1.0] * 6)] * 2,
    )
