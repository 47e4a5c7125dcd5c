"""Per-camera window summaries: mergeable counts binned like the reference profile.

Everything here is touched by the inference thread only; no locks.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from protocols import CameraWindow, Percentiles, ReferenceProfile, ShadowSummary

from .capture import CameraState, CaptureCounters
from .runtime import Inference


class LatencySamples:
    """A bounded reservoir of samples (uniform over the window) for percentiles."""

    def __init__(self, capacity: int = 2048, seed: int = 0) -> None:
        self._buf = np.empty(capacity, np.float64)
        self._seen = 0
        self._rng = np.random.default_rng(seed)

    def add(self, value: float) -> None:
        cap = len(self._buf)
        if self._seen < cap:
            self._buf[self._seen] = value
        else:
            j = int(self._rng.integers(0, self._seen + 1))
            if j < cap:
                self._buf[j] = value
        self._seen += 1

    def percentiles(self) -> Percentiles | None:
        n = min(self._seen, len(self._buf))
        if n == 0:
            return None
        p50, p95, p99 = np.percentile(self._buf[:n], [50, 95, 99])
        return Percentiles(p50=max(0.0, float(p50)), p95=max(0.0, float(p95)),
                           p99=max(0.0, float(p99)))

    def reset(self) -> None:
        self._seen = 0


def bin_of(value: float, edges: list[float]) -> int:
    """``protocols.features.bin_index`` for one value (the same rule, no array round trip):
    values below the first or above the last edge, and NaN, go to the end bins."""
    return min(max(bisect_right(edges, value) - 1, 0), len(edges) - 2)


class InputStatistics:
    """``protocols.features.input_stats`` computed with OpenCV into buffers kept between
    frames: the same numbers (to float32 rounding) about ten times faster, which is what
    keeps the per-frame summary cheap next to the model. A unit test pins the two together.
    """

    _LUMA = np.array([[0.299, 0.587, 0.114]], np.float32)

    def __init__(self) -> None:
        self._shape: tuple[int, ...] = ()
        self.values: npt.NDArray[np.float32] = np.empty(4, np.float32)

    def _allocate(self, h: int, w: int) -> None:
        self._img = np.empty((h, w, 3), np.float32)
        self._luma = np.empty((h, w), np.float32)
        self._lap = np.empty((h, w), np.float32)
        self._channels = [np.empty((h, w), np.uint8) for _ in range(3)]
        self._hi = np.empty((h, w), np.uint8)
        self._lo = np.empty((h, w), np.uint8)
        self._den = np.empty((h, w), np.uint8)
        self._sat = np.empty((h, w), np.float32)
        self._shape = (h, w, 3)

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Brightness, contrast, sharpness, saturation (``INPUT_STAT_NAMES`` order)."""
        if rgb.shape != self._shape:
            self._allocate(rgb.shape[0], rgb.shape[1])
        np.copyto(self._img, rgb, casting="unsafe")
        cv2.transform(self._img, self._LUMA, dst=self._luma)
        mean, std = cv2.meanStdDev(self._luma)
        cv2.Laplacian(self._luma, cv2.CV_32F, dst=self._lap, ksize=1)  # 4-neighbour kernel
        inner = self._lap[1:-1, 1:-1]  # the reference leaves the border out
        sharpness = float(cv2.mean(np.abs(inner, out=inner))[0])
        cv2.split(rgb, self._channels)
        r, g, b = self._channels
        cv2.max(r, g, dst=self._hi)
        cv2.max(self._hi, b, dst=self._hi)
        cv2.min(r, g, dst=self._lo)
        cv2.min(self._lo, b, dst=self._lo)
        np.maximum(self._hi, 1, out=self._den)
        cv2.subtract(self._hi, self._lo, dst=self._lo)
        cv2.divide(self._lo, self._den, dst=self._sat, dtype=cv2.CV_32F)
        v = self.values
        v[0], v[1] = float(mean[0, 0]), float(std[0, 0])
        v[2], v[3] = np.log1p(sharpness), float(cv2.mean(self._sat)[0])
        return v


class WindowAccumulator:
    """One camera's counts for the current window; ``close`` returns them and starts anew."""

    def __init__(self, camera_id: str, labels: Sequence[str] | None,
                 profile: ReferenceProfile | None, sample_capacity: int = 2048) -> None:
        self.camera_id = camera_id
        self.labels = list(labels or [])
        self._profile = profile
        if profile is not None:
            self._conf_edges = [float(e) for e in profile.confidence.edges]
            self._stat_names = list(profile.input_stats)
            self._stat_edges = [[float(e) for e in profile.input_stats[n].edges]
                                for n in self._stat_names]
            self._emb_mean = np.asarray(profile.embedding_mean, np.float32)
            self._emb_axes = np.asarray(profile.embedding_axes, np.float32).reshape(
                len(profile.embedding_axes), len(profile.embedding_mean))
            self._emb_edges = [[float(e) for e in h.edges] for h in profile.embedding_hists]
            self._emb_centered = np.empty_like(self._emb_mean)
            self._input_stats = InputStatistics()
        self.inference_ms = LatencySamples(sample_capacity)
        self.e2e_ms = LatencySamples(sample_capacity, seed=1)
        self.frame_age_ms = LatencySamples(sample_capacity, seed=2)
        self.started = time.monotonic()
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.inferred = 0
        self.errors = 0
        self.skipped = 0  # taken from the slot but not classified on purpose (motion gate)
        self.class_counts = np.zeros(len(self.labels), np.int64)
        if self._profile is not None:
            self.confidence = np.zeros(len(self._conf_edges) - 1, np.int64)
            self.input_hists = [np.zeros(len(e) - 1, np.int64) for e in self._stat_edges]
            self.embedding_hists = [np.zeros(len(e) - 1, np.int64) for e in self._emb_edges]

    def add(self, result: Inference, e2e_ms: float, frame_age_ms: float) -> None:
        """Count one inference."""
        self.inferred += 1
        if result.top < len(self.class_counts):
            self.class_counts[result.top] += 1
        self.inference_ms.add(result.inference_ms)
        self.e2e_ms.add(e2e_ms)
        self.frame_age_ms.add(frame_age_ms)
        if self._profile is None:
            return
        self.confidence[bin_of(result.confidence, self._conf_edges)] += 1
        stats = self._input_stats(result.rgb)
        for i, edges in enumerate(self._stat_edges):
            self.input_hists[i][bin_of(float(stats[i]), edges)] += 1
        if len(self._emb_edges):
            np.subtract(result.embedding, self._emb_mean, out=self._emb_centered)
            proj = self._emb_axes @ self._emb_centered
            for i, edges in enumerate(self._emb_edges):
                self.embedding_hists[i][bin_of(float(proj[i]), edges)] += 1

    def add_error(self) -> None:
        self.errors += 1

    def add_skipped(self) -> None:
        self.skipped += 1

    def close(self, state: CameraState, capture: CaptureCounters, now: float | None = None
              ) -> CameraWindow:
        """The window's summary; counts reset for the next window."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        window = CameraWindow(
            camera_id=self.camera_id,
            state=state,
            frames_captured=capture.captured,
            frames_inferred=self.inferred,
            frames_skipped=capture.skipped + self.skipped,
            frames_lost=capture.lost,
            errors=self.errors,
            reconnects=capture.reconnects,
            stalls=capture.stalls,
            capture_fps=capture.captured / elapsed,
            inference_fps=self.inferred / elapsed,
            frame_age_ms=self.frame_age_ms.percentiles(),
            inference_ms=self.inference_ms.percentiles(),
            e2e_ms=self.e2e_ms.percentiles(),
            class_counts={lb: int(n) for lb, n in zip(self.labels, self.class_counts, strict=True)
                          if n},
            confidence_hist=self.confidence.tolist() if self._profile else [],
            input_hists={name: h.tolist() for name, h in
                         zip(self._stat_names, self.input_hists, strict=True)}
            if self._profile else {},
            embedding_hists=[h.tolist() for h in self.embedding_hists] if self._profile else [],
        )
        self.started = now
        for samples in (self.inference_ms, self.e2e_ms, self.frame_age_ms):
            samples.reset()
        self._reset_counts()
        return window


class ShadowAccumulator:
    """How a shadow candidate compares with the active model on the same frames."""

    def __init__(self, release_id: str, labels: Sequence[str], sample_capacity: int = 2048
                 ) -> None:
        self.release_id = release_id
        self.labels = list(labels)
        self.latency_ms = LatencySamples(sample_capacity, seed=3)
        self._reset()

    def _reset(self) -> None:
        self.compared = 0
        self.agreements = 0
        self.errors = 0
        self.class_counts = np.zeros(len(self.labels), np.int64)

    def add(self, top: int, active_label: str, inference_ms: float) -> None:
        self.compared += 1
        self.class_counts[top] += 1
        if self.labels[top] == active_label:
            self.agreements += 1
        self.latency_ms.add(inference_ms)

    def add_error(self) -> None:
        self.errors += 1

    def close(self) -> ShadowSummary:
        summary = ShadowSummary(
            release_id=self.release_id,
            frames_compared=self.compared,
            agreements=self.agreements,
            errors=self.errors,
            class_counts={lb: int(n) for lb, n in zip(self.labels, self.class_counts,
                                                      strict=True) if n},
            latency_ms=self.latency_ms.percentiles(),
        )
        self.latency_ms.reset()
        self._reset()
        return summary


class ProcessSampler:
    """CPU % since the last call and resident memory of this process (psutil or /proc)."""

    def __init__(self) -> None:
        try:
            import psutil

            self._proc: object | None = psutil.Process()
            self._proc.cpu_percent(None)  # type: ignore[attr-defined]
        except ImportError:
            self._proc = None
        self._last = (time.monotonic(), self._cpu_seconds())

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def sample(self) -> tuple[float, int]:
        if self._proc is not None:
            cpu = float(self._proc.cpu_percent(None))  # type: ignore[attr-defined]
            rss = int(self._proc.memory_info().rss)  # type: ignore[attr-defined]
            return cpu, rss
        now, cpu_s = time.monotonic(), self._cpu_seconds()
        then, then_cpu = self._last
        self._last = (now, cpu_s)
        cpu = 100.0 * (cpu_s - then_cpu) / max(now - then, 1e-6)
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            rss = pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            rss = 0
        return max(cpu, 0.0), rss

