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
class Inference:
    """Views into the runtime's buffers: copy what you keep beyond the next frame."""

    logits: F32  # (n_labels,)
    probs: F32  # softmax(logits / temperature)
    embedding: F32  # (embedding_dim,)
    image: U8  # the resized frame (HxWx3 uint8, BGR like the camera's), for input statistics
    top: int
    confidence: float
    inference_ms: float


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

    def __init__(self, model_path: Path, manifest: ReleaseManifest, intra_op_threads: int) -> None:
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
        self._binding = self._session.io_binding()
        self._binding.bind_cpu_input(self._input_name, self._input)
        self._binding.bind_output(out.logits, "cpu", 0, np.float32, self._logits.shape,
                                  self._logits.ctypes.data)
        self._binding.bind_output(out.embedding, "cpu", 0, np.float32, self._embedding.shape,
                                  self._embedding.ctypes.data)

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
        # Right after a run ORT's kernels have pushed this code out of the CPU caches, and
        # each numpy call costs several times its warm cost: the few logits go through
        # plain Python, the embedding through one native NaN/inf check.
        logits = self._logits[0].tolist()
        if not (all(map(math.isfinite, logits)) and cv2.checkRange(self._embedding)[0]):
            raise ModelError(f"release {self.release_id} produced non-finite outputs")
        t, high = self._temperature, max(logits)
        exps = [math.exp((v - high) / t) for v in logits]
        total = sum(exps)
        probs = [e / total for e in exps]
        self._probs[:] = probs
        top = probs.index(max(probs))
        return Inference(self._logits[0], self._probs, self._embedding[0], self._resized, top,
                         probs[top], inference_ms)

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
