"""The drift reference profile and the golden inputs, from the fp32 ONNX model.

Agents bin their telemetry with the edges shipped here (docs/architecture.md,
"Telemetry and drift"): top-class calibrated confidence, the input statistics of
``protocols.features`` on the resized RGB input image, and the embedding
projected on the training set's principal axes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from protocols import INPUT_STAT_NAMES, GoldenInput, Histogram, InputSpec, ReferenceProfile
from protocols.features import bin_counts

from .calibrate import softmax
from .data import ImageRecord
from .errors import TrainerError
from .inference import OnnxModel, Predictions
from .preprocess import normalize, read_image, resize_to_input

FloatArray = npt.NDArray[np.floating]


def quantile_edges(values: FloatArray, bins: int) -> list[float]:
    """Bin edges at the quantiles of ``values``; strictly increasing (ties merge bins)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise TrainerError("cannot bin an empty or non-finite sample")
    edges = np.unique(np.quantile(v, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:  # constant values: one bin around them
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return [float(e) for e in edges]


def histogram(values: FloatArray, edges: Sequence[float]) -> Histogram:
    return Histogram(edges=list(edges), counts=[float(c) for c in bin_counts(values, edges)])


def principal_axes(embeddings: FloatArray, k: int) -> tuple[FloatArray, FloatArray]:
    """Mean and the top-``k`` principal axes (k x D) of the embeddings, by SVD.

    The sign of each axis is fixed (largest |component| positive) so that the
    same data gives the same axes.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    mean = e.mean(axis=0)
    _, _, vt = np.linalg.svd(e - mean, full_matrices=False)
    axes = vt[: min(k, vt.shape[0])]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return mean, axes * signs[:, None]


def reference_profile(
    predictions: Predictions,
    labels: Sequence[str],
    temperature: float,
    confidence_bins: int = 20,
    stat_bins: int = 16,
    components: int = 4,
) -> ReferenceProfile:
    """Build the ReferenceProfile from the model's outputs over the training split.

    Class counts are the model's *predicted* classes, as agents count them.
    """
    if predictions.stats is None:
        raise TrainerError("reference_profile needs predictions made with input statistics")
    probs = softmax(predictions.logits, temperature)
    predicted = probs.argmax(axis=1)
    k = len(labels)
    conf_edges = [float(e) for e in np.linspace(1.0 / k, 1.0, confidence_bins + 1)]
    mean, axes = principal_axes(predictions.embeddings, components)
    projections = (predictions.embeddings.astype(np.float64) - mean) @ axes.T
    return ReferenceProfile(
        sample_count=len(predicted),
        class_counts={label: float((predicted == i).sum()) for i, label in enumerate(labels)},
        confidence=histogram(probs.max(axis=1), conf_edges),
        input_stats={
            name: histogram(col, quantile_edges(col, stat_bins))
            for name, col in zip(INPUT_STAT_NAMES, predictions.stats.T, strict=True)
        },
        embedding_mean=[float(x) for x in mean],
        embedding_axes=[[float(x) for x in axis] for axis in axes],
        embedding_hists=[histogram(p, quantile_edges(p, stat_bins)) for p in projections.T],
    )


def pick_golden_records(records: Sequence[ImageRecord], count: int) -> list[ImageRecord]:
    """``count`` records, round-robin over labels, each label's in file-hash order."""
    by_label: dict[int, list[ImageRecord]] = {}
    for r in sorted(records, key=lambda r: r.sha256):
        by_label.setdefault(r.label_index, []).append(r)
    picked: list[ImageRecord] = []
    while len(picked) < count and any(by_label.values()):
        for label in sorted(by_label):
            if by_label[label] and len(picked) < count:
                picked.append(by_label[label].pop(0))
    return picked


def encode_png(image: npt.NDArray[np.uint8], color_order: str) -> bytes:
    """PNG bytes of an input-size image; cv2 writes from BGR, so convert RGB first."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if color_order == "RGB" else image
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise TrainerError("PNG encoding of a golden input failed")
    return bytes(buf.tobytes())


def golden_inputs(
    model: OnnxModel, records: Sequence[ImageRecord], spec: InputSpec, atol: float
) -> list[GoldenInput]:
    """Input-size PNGs with the logits the fp32 model gives them, for the on-device smoke test.

    An agent decodes the PNG as a frame and preprocesses it per the InputSpec;
    the resize is then the identity, so it must reproduce ``expected_logits``.
    """
    out: list[GoldenInput] = []
    for record in records:
        image = resize_to_input(read_image(record.path), spec)
        logits, _ = model.run(normalize(image, spec)[None])
        name = f"{record.label}-{record.sha256[:12]}"[:64]
        out.append(
            GoldenInput(
                name=name,
                image_png_b64=base64.b64encode(encode_png(image, spec.color_order)).decode(),
                expected_logits=[float(x) for x in logits[0]],
                atol=atol,
            )
        )
    return out


__all__ = [
    "encode_png",
    "golden_inputs",
    "histogram",
    "pick_golden_records",
    "principal_axes",
    "quantile_edges",
    "reference_profile",
]
