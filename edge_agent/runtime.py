"""One loaded model: an ONNX Runtime session plus the manifest's preprocessing.

``ModelRuntime.infer`` is the per-frame hot path: every buffer (resized image,
input tensor, outputs, probabilities) is allocated once here and reused, and the
outputs are bound once. Results are views into those buffers, valid until the
next ``infer`` call. At 64 px a numpy call costs about as much as the pixels it
touches, so the path is written in few calls (``bench/agent_pipeline.py``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from protocols import ReleaseManifest

from .errors import ModelError

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class CropResults:
    """One run over k crops: views into the runtime's batch buffers, valid until the next
    ``classify_crops`` call."""

    logits: F32  # (k, n_labels)
    probs: F32  # (k, n_labels), softmax(logits / temperature)
    embeddings: F32  # (k, embedding_dim)
    images: U8  # (k, H, W, 3) the crops the model saw (BGR)
    tops: list[int]
    confidences: list[float]
    inference_ms: float  # the whole run (all crops)

    def inference(self, i: int) -> Inference:
        """Crop ``i`` as a single-image result (for the window and the sample sink)."""
        return Inference(self.logits[i], self.probs[i], self.embeddings[i], self.images[i],
                         self.tops[i], self.confidences[i], self.inference_ms)


@dataclass(frozen=True)
class Inference:
    """Views into the runtime's buffers: copy what you keep beyond the next frame."""

    logits: F32  # (n_labels,)
    probs: F32  # softmax(logits / temperature)
    embedding: F32  # (embedding_dim,)
    image: U8  # the resized frame (HxWx3 uint8, BGR like the camera's), for input statistics
    top: int
    confidence: float
    inference_ms: float


def softmax(logits: list[float], temperature: float) -> tuple[list[float], int]:
    """``softmax(logits / temperature)`` and the top index, in plain Python: right after an
    ORT run each numpy call costs several times its warm cost, and a model has few labels."""
    high = max(logits)
    exps = [math.exp((v - high) / temperature) for v in logits]
    total = sum(exps)
    probs = [e / total for e in exps]
    return probs, probs.index(max(probs))


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """The agent's ORT session options (the pipeline benchmark gives bare ORT the same)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning after each run: the agent infers a few
    # frames a second, and between them this thread preprocesses and summarises and the
    # capture threads decode. A spinning worker takes their core; on 2 shared cores it
    # made the summary after each inference 2.5-3.5 times slower.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class ModelRuntime:
    """An ORT session on CPU for one verified release."""

    def __init__(self, model_path: Path, manifest: ReleaseManifest, intra_op_threads: int,
                 batch_crops: bool = True) -> None:
        self.manifest = manifest
        self.release_id = manifest.release_id
        spec = manifest.input
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=session_options(intra_op_threads),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # ORT raises its own exception types
            raise ModelError(f"cannot load {model_path.name}: {exc}"[:500]) from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"the model has {len(inputs)} inputs; exactly one is supported")
        self._input_name = str(inputs[0].name)
        # Crops go through in one run when the batch axis is dynamic (the trainer exports
        # it so); a model fixed at batch 1 runs once per crop.
        self.batch_crops = batch_crops and not isinstance(inputs[0].shape[0], int)
        names = {o.name for o in self._session.get_outputs()}
        out = manifest.outputs
        for name in (out.logits, out.embedding):
            if name not in names:
                raise ModelError(f"the model has no output {name!r} (it has {sorted(names)})")
        self.labels = list(manifest.labels)
        self._temperature = float(out.temperature)
        h, w = spec.height, spec.width
        # Buffers of the hot path, allocated once.
        self._resized: U8 = np.empty((h, w, 3), np.uint8)
        self._planes: list[U8] = [np.empty((h, w), np.uint8) for _ in range(3)]  # B, G, R
        self._input: F32 = np.empty((1, 3, h, w), np.float32)
        self._logits: F32 = np.empty((1, len(self.labels)), np.float32)
        self._embedding: F32 = np.empty((1, out.embedding_dim), np.float32)
        self._probs: F32 = np.empty(len(self.labels), np.float32)
        std = np.asarray(spec.std, np.float32)
        gain = np.float32(spec.scale) / std
        offset = -np.asarray(spec.mean, np.float32) / std
        # Per model input channel: the camera (BGR) plane that feeds it, its gain and offset.
        order = (2, 1, 0) if spec.color_order == "RGB" else (0, 1, 2)
        self._channels = [(self._planes[p], float(gain[c]), float(offset[c]), self._input[0, c])
                          for c, p in enumerate(order)]
        self._order = [(p, float(gain[c]), float(offset[c])) for c, p in enumerate(order)]
        self._binding = self._bind(self._input, self._logits, self._embedding)
        # Crop batches: buffers and bindings made on first use, for ``reserve`` crops.
        self._crop_input: F32 = np.empty((0, 3, h, w), np.float32)
        self._crop_logits: F32 = np.empty((0, len(self.labels)), np.float32)
        self._crop_embeddings: F32 = np.empty((0, out.embedding_dim), np.float32)
        self._crop_probs: F32 = np.empty((0, len(self.labels)), np.float32)
        self._crop_bindings: dict[tuple[int, int], ort.IOBinding] = {}

    def _bind(self, inputs: F32, logits: F32, embedding: F32) -> ort.IOBinding:
        """An IO binding of these buffers (C-contiguous; views of a larger buffer are fine)."""
        out = self.manifest.outputs
        binding = self._session.io_binding()
        binding.bind_cpu_input(self._input_name, inputs)
        binding.bind_output(out.logits, "cpu", 0, np.float32, logits.shape, logits.ctypes.data)
        binding.bind_output(out.embedding, "cpu", 0, np.float32, embedding.shape,
                            embedding.ctypes.data)
        return binding

    # -- the hot path ------------------------------------------------------------------
    def preprocess(self, bgr: U8) -> F32:
        """``(resize(frame) [in color_order] * scale - mean) / std`` as NCHW, in place."""
        h, w = self._resized.shape[:2]
        cv2.resize(bgr, (w, h), dst=self._resized, interpolation=cv2.INTER_LINEAR)
        cv2.split(self._resized, self._planes)
        for plane, gain, offset, dst in self._channels:  # uint8 plane -> float32, one pass
            cv2.addWeighted(plane, gain, plane, 0.0, offset, dst=dst, dtype=cv2.CV_32F)
        return self._input

    def infer(self, bgr: U8) -> Inference:
        """Classify one BGR frame; raise ModelError on non-finite outputs."""
        self.preprocess(bgr)
        started = time.perf_counter()
        try:
            self._session.run_with_iobinding(self._binding)
        except Exception as exc:  # ORT raises its own exception types
            raise ModelError(f"inference failed: {exc}"[:500]) from None
        inference_ms = (time.perf_counter() - started) * 1000.0
        # Right after a run ORT's kernels have pushed this code out of the CPU caches: the
        # few logits go through plain Python, the embedding through one native NaN/inf check.
        logits = self._logits[0].tolist()
        if not (all(map(math.isfinite, logits)) and cv2.checkRange(self._embedding)[0]):
            raise ModelError(f"release {self.release_id} produced non-finite outputs")
        probs, top = softmax(logits, self._temperature)
        self._probs[:] = probs
        return Inference(self._logits[0], self._probs, self._embedding[0], self._resized, top,
                         probs[top], inference_ms)

    # -- crops (regions mode) ------------------------------------------------------------
    def reserve(self, capacity: int) -> None:
        """Make room for ``capacity`` crops per run (once; the buffers are then reused)."""
        if capacity <= len(self._crop_input):
            return
        n, (h, w) = len(self.labels), self._resized.shape[:2]
        self._crop_input = np.empty((capacity, 3, h, w), np.float32)
        self._crop_logits = np.empty((capacity, n), np.float32)
        self._crop_embeddings = np.empty((capacity, self._embedding.shape[1]), np.float32)
        self._crop_probs = np.empty((capacity, n), np.float32)
        self._crop_bindings.clear()

    def _crop_binding(self, start: int, stop: int) -> ort.IOBinding:
        key = (start, stop)
        binding = self._crop_bindings.get(key)
        if binding is None:
            binding = self._crop_bindings[key] = self._bind(
                self._crop_input[start:stop], self._crop_logits[start:stop],
                self._crop_embeddings[start:stop])
        return binding

    def classify_crops(self, images: U8) -> CropResults:
        """Classify k crops already at the input size (k x H x W x 3 BGR uint8): one ORT
        run for all when the batch axis is dynamic, else one per crop; raise ModelError
        on non-finite outputs."""
        k = len(images)
        self.reserve(k)
        for i in range(k):  # the whole-frame normalisation, into crop i's slot
            cv2.split(images[i], self._planes)
            for (p, gain, offset), dst in zip(self._order, self._crop_input[i], strict=True):
                cv2.addWeighted(self._planes[p], gain, self._planes[p], 0.0, offset, dst=dst,
                                dtype=cv2.CV_32F)
        started = time.perf_counter()
        try:
            if self.batch_crops:
                self._session.run_with_iobinding(self._crop_binding(0, k))
            else:
                for i in range(k):
                    self._session.run_with_iobinding(self._crop_binding(i, i + 1))
        except Exception as exc:  # ORT raises its own exception types
            raise ModelError(f"inference failed: {exc}"[:500]) from None
        inference_ms = (time.perf_counter() - started) * 1000.0
        logits, probs = self._crop_logits[:k], self._crop_probs[:k]
        if not (cv2.checkRange(logits)[0] and cv2.checkRange(self._crop_embeddings[:k])[0]):
            raise ModelError(f"release {self.release_id} produced non-finite outputs")
        rows = [softmax(row, self._temperature) for row in logits.tolist()]
        probs[:] = [p for p, _ in rows]
        return CropResults(logits, probs, self._crop_embeddings[:k], images,
                           [top for _, top in rows], [p[top] for p, top in rows], inference_ms)

    # -- checks --------------------------------------------------------------------------
    def smoke_test(self) -> None:
        """Run every golden input; raise ModelError naming the first that does not match."""
        for golden in self.manifest.golden_inputs:
            try:
                png = np.frombuffer(base64.b64decode(golden.image_png_b64, validate=True), np.uint8)
            except (binascii.Error, ValueError):
                raise ModelError(f"golden input {golden.name!r} is not base64") from None
            bgr = cv2.imdecode(png, cv2.IMREAD_COLOR)  # the PNG holds RGB; OpenCV gives BGR
            if bgr is None:
                raise ModelError(f"golden input {golden.name!r} is not a readable PNG")
            result = self.infer(np.asarray(bgr, np.uint8))
            expected = np.asarray(golden.expected_logits, np.float32)
            if expected.shape != result.logits.shape:
                raise ModelError(
                    f"golden input {golden.name!r}: expected {expected.size} logits, "
                    f"the model gives {result.logits.size}"
                )
            diff = float(np.abs(result.logits - expected).max())
            if not diff <= golden.atol:  # NaN never passes
                raise ModelError(
                    f"smoke test failed on golden input {golden.name!r}: logits differ by "
                    f"{diff:.4g} (tolerance {golden.atol})"
                )
        log.info("smoke test passed", extra={"release_id": self.release_id,
                                             "golden_inputs": len(self.manifest.golden_inputs)})
