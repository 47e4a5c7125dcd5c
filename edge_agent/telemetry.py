"""Per-camera window summaries: mergeable counts binned like the reference profile.

Everything here is touched by the inference thread only; no locks. Per frame the
accumulator only queues what it needs (a row of scalars, the embedding, a copy of
the resized frame); a batch at a time it counts them, projects the embeddings,
measures the input statistics (``input_stats.InputStatistics``) and bins the
values with the rule of ``protocols.features``. Right after an inference every
call runs in cold caches, so few calls per frame is what keeps the summary cheap.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from protocols import CameraWindow, Percentiles, ReferenceProfile, ShadowSummary
from protocols.features import bin_counts
from protocols.manifest import INPUT_STAT_NAMES
from protocols.messages import AnalysisMode

from .capture import CameraState, CaptureCounters
from .input_stats import InputStatistics
from .regions.condition import CONDITIONS, condition_counts, majority
from .runtime import CropResults, Inference

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

# Frames queued before a batch is summarised: 170 of 64 px, 13 of 224 px. Per frame a
# batch of 170 cost a third of one of 21 (bench/agent_pipeline.py).
QUEUE_BYTES = 2 * 1024 * 1024


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

    def extend(self, values: npt.ArrayLike) -> None:
        """``add`` each value in turn, in a few numpy calls."""
        vals = np.asarray(values, np.float64)
        cap, seen = len(self._buf), self._seen
        fill = min(max(cap - seen, 0), len(vals))
        self._buf[seen:seen + fill] = vals[:fill]
        rest = vals[fill:]
        if len(rest):  # value k of the stream replaces a uniform slot j <= k when j < cap
            slots = self._rng.integers(0, np.arange(seen + fill, seen + len(vals)) + 1)
            keep = slots < cap
            self._buf[slots[keep]] = rest[keep]
        self._seen += len(vals)

    def percentiles(self) -> Percentiles | None:
        n = min(self._seen, len(self._buf))
        if n == 0:
            return None
        p50, p95, p99 = np.percentile(self._buf[:n], [50, 95, 99])
        return Percentiles(p50=max(0.0, float(p50)), p95=max(0.0, float(p95)),
                           p99=max(0.0, float(p99)))

    def reset(self) -> None:
        self._seen = 0


class WindowAccumulator:
    """One camera's counts for the current window; ``close`` returns them and starts anew.

    ``add`` only queues: a row of the frame's scalars, its embedding and its resized
    frame. The queue is summarised a batch at a time (as many frames as
    ``QUEUE_BYTES`` hold, at most ``bin_every``) and binned every ``bin_every``
    frames and at ``close``. Right after an ORT run the interpreter's and numpy's code is
    out of the CPU caches and every call costs several times its warm cost, so per frame
    there are as few calls as can be (``bench/agent_pipeline.py``).
    """

    def __init__(self, camera_id: str, labels: Sequence[str] | None,
                 profile: ReferenceProfile | None, sample_capacity: int = 2048,
                 bin_every: int = 256, mode: AnalysisMode = "frame") -> None:
        self.camera_id = camera_id
        # Whole frames: a queued row is a frame, with its latencies, and its condition
        # comes from its input statistics. Regions: a row is a crop; latencies are per
        # frame, and the condition is the frame's, measured by the region analyzer.
        self._whole_frames = mode == "frame"
        self.labels = list(labels or [])
        self._profile = profile
        # Value columns: confidence, embedding projections, the four input statistics.
        # Histograms: (column, edges), reported in this order.
        self._bins: list[tuple[int, F64]] = []
        self._stat_names: list[str] = []
        self._stat_at = 1
        self._emb_mean: F64 = np.zeros(0, np.float64)
        self._emb_axes: F64 = np.zeros((0, 0), np.float64)
        if profile is not None:
            self._emb_mean = np.asarray(profile.embedding_mean, np.float64)
            self._emb_axes = np.asarray(profile.embedding_axes, np.float64).reshape(
                len(profile.embedding_axes), len(profile.embedding_mean))
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
        # The queue: rows of (top, confidence, inference ms, e2e ms, frame age ms), and
        # with a profile the frames and embeddings (buffers sized by the first frame).
        self._rows: list[tuple[int, float, float, float, float]] = []
        self._latencies: list[tuple[float, float, float]] = []  # per frame, regions mode
        self._batch = bin_every
        self._frames: U8 = np.empty((0, 0, 0, 3), np.uint8)
        self._embeddings: F32 = np.empty((0, len(self._emb_mean)), np.float32)
        self._pending = 0  # summarised rows of _values not binned yet
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
        self.conditions = np.zeros(len(CONDITIONS), np.int64)
        self._rows.clear()
        self._latencies.clear()
        self._pending = 0

    def add(self, result: Inference, e2e_ms: float, frame_age_ms: float) -> None:
        """Count one inference (copies what it keeps of ``result``)."""
        self.inferred += 1
        self._queue(result.image[None], result.embedding[None],
                    [(result.top, result.confidence, result.inference_ms, e2e_ms, frame_age_ms)])

    def add_crops(self, crops: CropResults | None, e2e_ms: float, frame_age_ms: float,
                  condition: int) -> None:
        """Count one frame in regions mode: its crops (None: none was cut) each as an
        input the model saw, its latencies once, and its condition (``CONDITIONS`` index)."""
        self.inferred += 1
        self.conditions[condition] += 1
        if crops is None:
            self._latencies.append((math.nan, e2e_ms, frame_age_ms))
            return
        self._latencies.append((crops.inference_ms, e2e_ms, frame_age_ms))
        nan = math.nan
        self._queue(crops.images, crops.embeddings,
                    [(top, conf, nan, nan, nan)
                     for top, conf in zip(crops.tops, crops.confidences, strict=True)])

    def _queue(self, images: U8, embeddings: F32,
               rows: list[tuple[int, float, float, float, float]]) -> None:
        """Queue k inputs (k x H x W x 3 images, k embeddings, k rows of scalars), a slice
        at a time; a full queue is summarised."""
        done = 0
        while done < len(rows):
            if self._profile is not None and self._frames.shape[1:] != images.shape[1:]:
                self._summarise()
                self._batch = max(1, min(len(self._values),
                                         QUEUE_BYTES // images[0].nbytes))
                self._frames = np.empty((self._batch, *images.shape[1:]), np.uint8)
                self._embeddings = np.empty((self._batch, len(self._emb_mean)), np.float32)
            at = len(self._rows)
            take = min(len(rows) - done, self._batch - at)
            if self._profile is not None:
                self._frames[at:at + take] = images[done:done + take]
                self._embeddings[at:at + take] = embeddings[done:done + take]
            self._rows += rows[done:done + take]
            done += take
            if len(self._rows) == self._batch:
                self._summarise()

    def _summarise(self) -> None:
        """Count the queued frames, and with a profile put their values in rows to bin."""
        if self._latencies:  # regions mode: one row per frame, not per crop
            per_frame = np.array(self._latencies, np.float64)
            self._latencies.clear()
            ran = per_frame[~np.isnan(per_frame[:, 0]), 0]
            self.inference_ms.extend(ran)
            self.e2e_ms.extend(per_frame[:, 1])
            self.frame_age_ms.extend(per_frame[:, 2])
        n = len(self._rows)
        if not n:
            return
        scalars = np.array(self._rows, np.float64)
        self._rows.clear()
        tops = scalars[:, 0].astype(np.intp)
        labels = len(self.class_counts)
        self.class_counts += np.bincount(tops[tops < labels], minlength=labels)
        if self._whole_frames:
            self.inference_ms.extend(scalars[:, 2])
            self.e2e_ms.extend(scalars[:, 3])
            self.frame_age_ms.extend(scalars[:, 4])
        if self._profile is None:
            return
        if self._pending + n > len(self._values):
            self._bin_pending()
        values = self._values[self._pending:self._pending + n]
        values[:, 0] = scalars[:, 1]
        if self._stat_at > 1:
            # In float64: a batched product may sum in any order, with fused multiply-adds.
            centred = self._embeddings[:n] - self._emb_mean
            values[:, 1:self._stat_at] = centred @ self._emb_axes.T
        self._input_stats(self._frames[:n], values[:, self._stat_at:])
        if self._whole_frames:
            stats = values[:, self._stat_at:]
            self.conditions += condition_counts(stats[:, INPUT_STAT_NAMES.index("brightness")],
                                                stats[:, INPUT_STAT_NAMES.index("saturation")])
        self._pending += n
        if self._pending == len(self._values):
            self._bin_pending()

    def _bin_pending(self) -> None:
        values = self._values[:self._pending]
        for (column, edges), hist in zip(self._bins, self._hists, strict=True):
            hist += bin_counts(values[:, column], edges)
        self._pending = 0

    def add_error(self) -> None:
        self.errors += 1

    def add_skipped(self) -> None:
        self.skipped += 1

    def close(self, state: CameraState, capture: CaptureCounters, now: float | None = None,
              *, mode: AnalysisMode | None = None, regions: dict[str, object] | None = None
              ) -> CameraWindow:
        """The window's summary; counts reset for the next window. ``mode`` None leaves out
        the mode and the condition (a control plane of the previous protocol);
        ``regions``: the region analyzer's fields."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.started, 1e-6)
        self._summarise()
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
            mode=mode,
            condition=majority(self.conditions) if mode is not None else None,
            **(regions or {}),  # type: ignore[arg-type]
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

