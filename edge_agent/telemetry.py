"""Per-camera window summaries: mergeable counts binned like the reference profile.

Everything here is touched by the inference thread only; no locks. Per frame the
accumulator keeps a copy of the resized frame and a buffer row of the values it
bins (confidence, embedding projections, then the input statistics). The input
statistics of the kept frames are computed together, a batch at a time, and the
rows binned with numpy every ``bin_every`` frames and at ``close``, with the rule
of ``protocols.features``. At 64 px a call costs about what its pixels cost, so
calls per batch instead of per frame halve the summary's cost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from protocols import CameraWindow, Percentiles, ReferenceProfile, ShadowSummary
from protocols.features import bin_counts
from protocols.manifest import INPUT_STAT_NAMES

from .capture import CameraState, CaptureCounters
from .runtime import Inference

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

STATS_BATCH_BYTES = 256 * 1024  # frames kept for one batch of input statistics


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


class InputStatistics:
    """``protocols.features.input_stats`` of a batch of same-size BGR frames, computed with
    OpenCV on the frames stacked into one tall image (the Laplacian's rows across two
    frames fall in the borders the definition leaves out), sums in float64, into buffers
    kept between batches: the same numbers to float32 rounding, pinned by a unit test.
    """

    def __init__(self) -> None:
        self._size: tuple[int, int, int] = (0, 0, 0)  # frames, height, width allocated

    def _allocate(self, n: int, h: int, w: int) -> None:
        self._img = np.empty((n * h, w, 3), np.float32)
        self._luma = np.empty((n * h, w), np.float32)
        self._work = np.empty((n * h, w), np.float32)  # deviations^2, |Laplacian|, sat.
        self._planes = [np.empty((n * h, w), np.uint8) for _ in range(3)]
        self._hi = np.empty((n * h, w), np.uint8)
        self._lo = np.empty((n * h, w), np.uint8)
        self._size = (n, h, w)

    def __call__(self, frames: U8, out: F32) -> None:
        """Write each frame's brightness, contrast, sharpness, saturation
        (``INPUT_STAT_NAMES`` order) into the rows of ``out`` (n x 4)."""
        n, h, w = frames.shape[:3]
        if (h, w) != self._size[1:] or n > self._size[0]:
            self._allocate(n, h, w)
        rows, pixels = n * h, h * w
        img, luma, work = self._img[:rows], self._luma[:rows], self._work[:rows]
        b, g, r = (p[:rows] for p in self._planes)
        hi, lo = self._hi[:rows], self._lo[:rows]

        def sums(a: F32) -> F64:  # per frame, float64
            return np.asarray(cv2.reduce(a.reshape(n, pixels), 1, cv2.REDUCE_SUM,
                                         dtype=cv2.CV_64F)[:, 0], np.float64)

        stacked = frames.reshape(rows, w, 3)
        np.copyto(img, stacked, casting="unsafe")
        cv2.cvtColor(img, cv2.COLOR_BGR2GRAY, dst=luma)  # 0.299 R + 0.587 G + 0.114 B
        mean = sums(luma) / pixels
        centred = work.reshape(n, pixels)  # two passes, like numpy's std: exact when flat
        np.subtract(luma.reshape(n, pixels), mean[:, None], out=centred, casting="unsafe")
        cv2.multiply(work, work, dst=work)
        var = sums(work) / pixels
        cv2.Laplacian(luma, cv2.CV_32F, dst=work, ksize=1)  # 4-neighbour kernel
        np.abs(work, out=work)
        edge = work.reshape(n, h, w)
        edge[:, 0], edge[:, -1], edge[:, :, 0], edge[:, :, -1] = 0, 0, 0, 0
        sharpness = np.log1p(sums(work) / ((h - 2) * (w - 2)))
        cv2.split(stacked, [b, g, r])
        cv2.max(b, g, dst=hi)
        cv2.max(hi, r, dst=hi)
        cv2.min(b, g, dst=lo)
        cv2.min(lo, r, dst=lo)
        cv2.subtract(hi, lo, dst=lo)
        np.maximum(hi, 1, out=hi)
        cv2.divide(lo, hi, dst=work, dtype=cv2.CV_32F)  # (max - min) / max(max, 1)
        out[:, 0], out[:, 1], out[:, 2] = mean, np.sqrt(var), sharpness
        out[:, 3] = sums(work) / pixels


class WindowAccumulator:
    """One camera's counts for the current window; ``close`` returns them and starts anew."""

    def __init__(self, camera_id: str, labels: Sequence[str] | None,
                 profile: ReferenceProfile | None, sample_capacity: int = 2048,
                 bin_every: int = 256) -> None:
        self.camera_id = camera_id
        self.labels = list(labels or [])
        self._profile = profile
        # Value columns: confidence, embedding projections, the four input statistics.
        # Histograms: (column, edges), reported in this order.
        self._bins: list[tuple[int, F64]] = []
        self._stat_names: list[str] = []
        self._stat_at = 1
        if profile is not None:
            self._emb_mean = np.asarray(profile.embedding_mean, np.float32)
            self._emb_axes = np.asarray(profile.embedding_axes, np.float32).reshape(
                len(profile.embedding_axes), len(profile.embedding_mean))
            self._emb_centered = np.empty_like(self._emb_mean)
            self._stat_at = 1 + len(self._emb_axes)
            # By name: a verified manifest's keys come sorted, not in INPUT_STAT_NAMES order.
            self._stat_names = [n for n in profile.input_stats if n in INPUT_STAT_NAMES]
            self._bins = [(0, np.asarray(profile.confidence.edges, np.float64))]
            self._bins += [(self._stat_at + INPUT_STAT_NAMES.index(n),
                            np.asarray(profile.input_stats[n].edges, np.float64))
                           for n in self._stat_names]
            self._bins += [(1 + k, np.asarray(h.edges, np.float64))
                           for k, h in enumerate(profile.embedding_hists)]
            self._input_stats = InputStatistics()
        self._values: F32 = np.empty((bin_every, self._stat_at + len(INPUT_STAT_NAMES)),
                                     np.float32)
        self._frames: U8 = np.empty((0, 0, 0, 3), np.uint8)  # sized by the first frame
        self._pending = 0  # rows not binned yet
        self._queued = 0  # of which the last ones still lack their input statistics
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
        self._hists = [np.zeros(len(edges) - 1, np.int64) for _, edges in self._bins]
        self._pending = self._queued = 0

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
        if self._frames.shape[1:] != result.image.shape:
            self._measure_queued()
            batch = max(1, min(len(self._values), STATS_BATCH_BYTES // result.image.nbytes))
            self._frames = np.empty((batch, *result.image.shape), np.uint8)
        row = self._values[self._pending]
        row[0] = result.confidence
        if self._stat_at > 1:
            np.subtract(result.embedding, self._emb_mean, out=self._emb_centered)
            np.matmul(self._emb_axes, self._emb_centered, out=row[1:self._stat_at])
        np.copyto(self._frames[self._queued], result.image)
        self._pending += 1
        self._queued += 1
        if self._queued == len(self._frames):
            self._measure_queued()
        if self._pending == len(self._values):
            self._bin_pending()

    def _measure_queued(self) -> None:
        """Input statistics of the frames queued, into their rows."""
        n, end = self._queued, self._pending
        if n:
            self._input_stats(self._frames[:n], self._values[end - n:end, self._stat_at:])
        self._queued = 0

    def _bin_pending(self) -> None:
        self._measure_queued()
        values = self._values[:self._pending]
        for (column, edges), hist in zip(self._bins, self._hists, strict=True):
            hist += bin_counts(values[:, column], edges)
        self._pending = 0

    def add_error(self) -> None:
        self.errors += 1

    def add_skipped(self) -> None:
        self.skipped += 1

    def close(self, state: CameraState, capture: CaptureCounters, now: float | None = None
              ) -> CameraWindow:
        """The window's summary; counts reset for the next window."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        self._bin_pending()
        hists = [h.tolist() for h in self._hists]
        n_stats = len(self._stat_names)
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
            confidence_hist=hists[0] if self._profile else [],
            input_hists=dict(zip(self._stat_names, hists[1:1 + n_stats], strict=True)),
            embedding_hists=hists[1 + n_stats:],
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

