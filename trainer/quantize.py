"""Static int8 quantization (QDQ, per-channel) and the quantization gate.

The int8 model is calibrated on training images (never the test split), scored
on the test split and timed beside the fp32 model on this CPU, alternating the
two so that a neighbour's load hits both alike. int8 becomes the primary
artifact only when (1) it loses at most ``budget_points`` of test accuracy and
(2) it is not slower than fp32 (median latency ratio <= ``max_latency_ratio``).
Condition 2 is ours: on many x86 CPUs without VNNI, int8 MobileNetV3 (hard-swish
and squeeze-excite dequantize around every block) runs slower than fp32, and a
model that is both less accurate and slower buys the agents nothing but a
smaller download.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from .errors import TrainerError

log = logging.getLogger(__name__)
F32Array = npt.NDArray[np.float32]


class BatchReader(CalibrationDataReader):  # type: ignore[misc]
    """Feeds preprocessed NCHW batches to the calibrator, one ``{"input": batch}`` at a time."""

    def __init__(self, batches: Sequence[F32Array], input_name: str = "input") -> None:
        self._batches = list(batches)
        self._input_name = input_name
        self._iter: Iterator[F32Array] = iter(self._batches)

    def get_next(self) -> dict[str, F32Array] | None:
        batch = next(self._iter, None)
        return None if batch is None else {self._input_name: batch}

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def quantize_int8(
    fp32_path: Path, int8_path: Path, calibration: Sequence[F32Array]
) -> Path:
    """Write the static int8 (QDQ, per-channel weights, int8 activations) model of ``fp32_path``."""
    if not calibration:
        raise TrainerError("int8 quantization needs at least one calibration batch")
    prepared = int8_path.with_suffix(".prep.onnx")
    try:
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8_path),
            BatchReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    except Exception as exc:  # onnxruntime.quantization raises many untyped errors
        raise TrainerError(f"int8 quantization of {fp32_path} failed: {exc}") from exc
    finally:
        prepared.unlink(missing_ok=True)
    return int8_path


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def compare_latency(
    fp32_path: Path,
    int8_path: Path,
    sample: F32Array,
    threads: int = 1,
    rounds: int = 15,
    runs_per_round: int = 10,
) -> tuple[float, float]:
    """Median per-inference latency (ms) of fp32 and int8 on ``sample``, measured side by side.

    Rounds alternate the two models (fp32 first in even rounds, int8 first in odd
    ones) so that load from other processes and CPU frequency changes hit both.
    """
    sessions = {"fp32": _session(fp32_path, threads), "int8": _session(int8_path, threads)}
    feed = {"input": np.ascontiguousarray(sample, np.float32)}
    for session in sessions.values():  # warm-up: allocations, kernel selection
        for _ in range(3):
            session.run(None, feed)
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    for r in range(rounds):
        order = ("fp32", "int8") if r % 2 == 0 else ("int8", "fp32")
        for name in order:
            t0 = time.perf_counter()
            for _ in range(runs_per_round):
                sessions[name].run(None, feed)
            times[name].append((time.perf_counter() - t0) / runs_per_round * 1000.0)
    return statistics.median(times["fp32"]), statistics.median(times["int8"])


@dataclass(frozen=True)
class GateDecision:
    """The quantization gate's measurements and verdict (goes into report.json)."""

    fp32_accuracy: float
    int8_accuracy: float
    accuracy_drop_points: float  # (fp32 - int8) * 100; negative: int8 did better
    budget_points: float
    fp32_latency_ms: float
    int8_latency_ms: float
    latency_ratio: float  # int8 / fp32; below 1: int8 is faster
    max_latency_ratio: float
    fp32_size_bytes: int
    int8_size_bytes: int
    size_ratio: float  # int8 / fp32
    latency_batch: int
    latency_threads: int
    test_samples: int
    ship_int8: bool
    reason: str

    def summary(self) -> dict[str, object]:
        return asdict(self)


def decide(
    *,
    fp32_accuracy: float,
    int8_accuracy: float,
    fp32_latency_ms: float,
    int8_latency_ms: float,
    fp32_size_bytes: int,
    int8_size_bytes: int,
    budget_points: float,
    max_latency_ratio: float,
    latency_batch: int,
    latency_threads: int,
    test_samples: int,
) -> GateDecision:
    """Apply the gate to measured figures (pure: no model runs here)."""
    drop = (fp32_accuracy - int8_accuracy) * 100.0
    ratio = int8_latency_ms / fp32_latency_ms if fp32_latency_ms > 0 else float("inf")
    size_ratio = int8_size_bytes / fp32_size_bytes if fp32_size_bytes else float("inf")
    accurate = drop <= budget_points + 1e-9
    fast = ratio <= max_latency_ratio
    figures = (
        f"int8 test accuracy {int8_accuracy:.4f} vs fp32 {fp32_accuracy:.4f} "
        f"(drop {drop:+.2f} points, budget {budget_points:g}); latency int8/fp32 "
        f"{ratio:.2f} (limit {max_latency_ratio:g}, batch {latency_batch}, "
        f"{latency_threads} thread(s)); size int8/fp32 {size_ratio:.2f}"
    )
    if accurate and fast:
        reason = f"int8 primary: within the accuracy budget and not slower. {figures}"
    elif not accurate and not fast:
        reason = f"fp32 primary: int8 exceeds the accuracy budget and is slower. {figures}"
    elif not accurate:
        reason = f"fp32 primary: int8 exceeds the accuracy budget. {figures}"
    else:
        reason = f"fp32 primary: int8 is slower on this CPU. {figures}"
    return GateDecision(
        fp32_accuracy=fp32_accuracy,
        int8_accuracy=int8_accuracy,
        accuracy_drop_points=drop,
        budget_points=budget_points,
        fp32_latency_ms=fp32_latency_ms,
        int8_latency_ms=int8_latency_ms,
        latency_ratio=ratio,
        max_latency_ratio=max_latency_ratio,
        fp32_size_bytes=fp32_size_bytes,
        int8_size_bytes=int8_size_bytes,
        size_ratio=size_ratio,
        latency_batch=latency_batch,
        latency_threads=latency_threads,
        test_samples=test_samples,
        ship_int8=accurate and fast,
        reason=reason[:1024],
    )


__all__ = ["BatchReader", "GateDecision", "compare_latency", "decide", "quantize_int8"]
