"""The inference loop: newest frame per camera at its sample rate -> model -> window.

One thread. The active :class:`ModelRuntime` is a plain reference that
``swap`` replaces; the loop reads it once per pass, so a swap lands between
frames and never drops one. A swap closes the current window, so every
window is binned with the bins of the one release that produced it.

A camera in regions mode (the default) hands each frame to its
:class:`~.regions.analyzer.RegionAnalyzer`: moving regions, square crops, one
batched model run, tracks and per-track events; the window counts the crops. A
camera in frame mode classifies the whole frame, with an optional motion gate
(static scenes are skipped, counted as skipped on purpose) and debounced
per-frame detection events.

Around the model call: a shadow candidate run on a fraction of the same frames
or crops (compared, never acted on), a count of consecutive model failures that
asks the agent for a rollback, and an optional sample sink for low-confidence
frames or crops and, in regions mode, candidate negatives of the camera's own
background (active learning, ``regions/mining.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from protocols import TelemetryWindow
from protocols.logs import set_static_context
from protocols.messages import EventKind

from .capture import CameraSource, CaptureCounters, Frame, Image
from .events import Debouncer, EventLog
from .motion import MotionGate
from .outbox import Outbox
from .regions.analyzer import RegionAnalyzer
from .regions.mining import NegativeMiner, NegativeSink
from .regions.stats import RegionCounts
from .runtime import CropResults, Inference, ModelRuntime
from .snapshots import SnapshotTaker
from .telemetry import ProcessSampler, ShadowAccumulator, WindowAccumulator
from .window_sender import WindowHandler, WindowSender

log = logging.getLogger(__name__)

FailureHandler = Callable[[ModelRuntime, str], None]


class SampleSink(NegativeSink, Protocol):
    """Takes low-confidence frames and candidate negatives for labelling; must return at
    once (it copies what it keeps)."""

    def offer(self, camera_id: str, image: Image, result: Inference,
              runtime: ModelRuntime) -> None: ...


@dataclass(frozen=True)
class DetectionPolicy:
    persist_frames: int = 3
    min_confidence: float = 0.6
    ignore_labels: frozenset[str] = frozenset()


@dataclass
class _Lane:
    """One camera as the loop sees it: whole frames (a debouncer, maybe a motion gate) or
    regions (an analyzer)."""

    source: CameraSource
    period: float
    debounce: Debouncer
    acc: WindowAccumulator
    gate: MotionGate | None = None
    regions: RegionAnalyzer | None = None
    next_due: float = 0.0
    seen: CaptureCounters = field(default_factory=CaptureCounters)


class InferenceLoop:
    def __init__(
        self,
        device_id: str,
        sources: Sequence[CameraSource],
        outbox: Outbox,
        events: EventLog,
        window_seconds: float,
        detection: DetectionPolicy,
        wake: threading.Event,
        on_window: WindowHandler | None = None,
        on_failure: FailureHandler | None = None,
        failures_before_rollback: int = 5,
        samples: SampleSink | None = None,
        snapshots: SnapshotTaker | None = None,
        previous_protocol: bool = False,
    ) -> None:
        self.device_id = device_id
        self.previous_protocol = previous_protocol
        self._events = events
        self._sender = WindowSender(device_id, outbox, events, on_window, previous_protocol)
        self.window_seconds = window_seconds
        self._wake = wake
        self._on_failure = on_failure
        self.failures_before_rollback = failures_before_rollback
        self._failures = 0  # consecutive frames the active model failed on
        self._failure_reported: ModelRuntime | None = None
        self.samples = samples
        self._miner = NegativeMiner()
        self.snapshots = snapshots
        self._runtime: ModelRuntime | None = None
        self._shadow: tuple[ModelRuntime, float] | None = None
        self._shadow_acc: ShadowAccumulator | None = None
        self._shadow_credit = 0.0
        self.last_pass = time.monotonic()  # for /healthz: the loop is alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampler = ProcessSampler()
        self._lanes = [self._lane(s, detection) for s in sources]
        self._window_started = datetime.now(UTC)
        self._window_end = 0.0

    def _lane(self, source: CameraSource, detection: DetectionPolicy) -> _Lane:
        cam = source.config
        lane = _Lane(source, 1.0 / cam.sample_fps,
                     Debouncer(detection.persist_frames, detection.min_confidence,
                               detection.ignore_labels),
                     WindowAccumulator(source.camera_id, None, None, mode=cam.mode))
        if cam.mode == "regions":
            def emit(kind: EventKind, **fields: object) -> None:
                self._events.emit(kind, camera_id=source.camera_id, **fields)

            lane.regions = RegionAnalyzer(cam, emit, detection.ignore_labels,
                                          detection.min_confidence, self.previous_protocol)
        elif cam.motion_gate:
            lane.gate = MotionGate(cam.motion_threshold, cam.motion_max_skip_seconds)
        return lane

    @property
    def windows_closed(self) -> int:
        """Windows closed so far, stored or dropped: every one is delivered or counted."""
        return self._sender.windows_closed

    def region_counts(self) -> dict[str, RegionCounts]:
        """Each regions-mode camera's running region and track counts (for /metrics)."""
        return {lane.source.camera_id: lane.regions.counts for lane in self._lanes
                if lane.regions is not None}

    @property
    def runtime(self) -> ModelRuntime | None:
        return self._runtime

    @property
    def shadow(self) -> ModelRuntime | None:
        shadow = self._shadow
        return shadow[0] if shadow is not None else None

    def swap(self, runtime: ModelRuntime | None) -> None:
        """Serve ``runtime`` from the next frame on (an atomic reference swap)."""
        self._runtime = runtime
        # Every log line of this process names the serving release from now on; a line
        # about another release (a candidate) names that one in its own fields.
        set_static_context(release_id=runtime.release_id if runtime is not None else None)
        self._wake.set()

    def set_shadow(self, runtime: ModelRuntime | None, fraction: float = 0.25) -> None:
        """Mirror ``fraction`` of the classified frames to ``runtime`` (None: stop)."""
        self._shadow = (runtime, fraction) if runtime is not None else None
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current frame; the partial window is closed and queued."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        current, shadow = self._runtime, self._shadow
        self._open_window(current, shadow)
        while not self._stop.is_set():
            self._wake.clear()  # before looking: a frame arriving from now on wakes the wait
            runtime = self._runtime
            if runtime is not current or self._shadow is not shadow:
                self._close_window_safely(current)
                current, shadow = runtime, self._shadow
                self._failures = 0
                self._open_window(current, shadow)
            now = self.last_pass = time.monotonic()
            for lane in self._lanes:
                lane.source.check_stall(now)
                if (current is not None and now >= lane.next_due) or self._owes(lane):
                    lane.source.slot.want()
            for lane in self._lanes:
                if current is None and self._owes(lane):  # no model yet: the frame alone
                    self._snapshot_only(lane)
                elif current is not None and now >= lane.next_due:
                    frame = lane.source.slot.take()
                    if frame is not None:
                        self._process(lane, frame, current)
                        lane.next_due = max(lane.next_due + lane.period, now)
            if time.monotonic() >= self._window_end:
                self._close_window_safely(current)
                self._open_window(current, shadow)
            # Lanes already due wait for their camera: asking the slot for a frame makes
            # FrameSlot.put set the wake event (without it a lane that fell behind schedule
            # would sleep the full half second below and sample at 2 fps).
            now = time.monotonic()
            if current is not None:
                for lane in self._lanes:
                    if lane.next_due <= now:
                        lane.source.slot.want()
            wake_at = min([self._window_end, now + 0.5,
                           *(ln.next_due for ln in self._lanes if ln.next_due > now)])
            self._wake.wait(max(0.0, wake_at - now))
        for lane in self._lanes:  # no track is left open: animal_left for those alive
            if lane.regions is not None:
                lane.regions.stop()
        self._close_window_safely(current)

    def _process(self, lane: _Lane, frame: Frame, runtime: ModelRuntime) -> None:
        try:
            if lane.regions is not None:
                self._regions(lane, lane.regions, frame, runtime)
            else:
                self._whole_frame(lane, frame, runtime)
            self._snapshot(lane, frame)
        finally:
            lane.source.slot.recycle(frame.image)

    def _owes(self, lane: _Lane) -> bool:
        return self.snapshots is not None and self.snapshots.wanted(lane.source.camera_id)

    def _snapshot_only(self, lane: _Lane) -> None:
        """Before any model runs (a camera being aimed at install time), a snapshot still
        shows what the camera sees."""
        frame = lane.source.slot.take()
        if frame is not None:
            try:
                self._snapshot(lane, frame)
            finally:
                lane.source.slot.recycle(frame.image)

    def _snapshot(self, lane: _Lane, frame: Frame) -> None:
        """An operator asked for this camera's frame: hand it over before its buffer is
        reused, with the animals tracked on it (none in whole-frame mode)."""
        camera_id = lane.source.camera_id
        if self.snapshots is None or not self.snapshots.wanted(camera_id):
            return
        regions = lane.regions
        self.snapshots.offer(camera_id, frame.image,
                             regions.animals_now if regions is not None else list)

    def _regions(self, lane: _Lane, regions: RegionAnalyzer, frame: Frame,
                 runtime: ModelRuntime) -> None:
        """Regions mode: find, classify (one batch) and track; count the crops; mirror and
        sample crops."""
        age_ms = (time.monotonic() - frame.captured_at) * 1000.0
        try:
            crops = regions.analyse(frame.image, frame.captured_at, runtime)
        except Exception as exc:  # ModelError, or OpenCV refusing an odd frame
            self._inference_error(lane, runtime, exc)
            return
        self._failures = 0
        lane.acc.add_crops(crops, (time.monotonic() - frame.captured_at) * 1000.0, age_ms,
                           regions.condition_index)
        if crops is not None:
            self._crops_seen(lane, crops, runtime)
        if self.samples is not None:
            try:
                self._miner(self.samples, lane.source.camera_id, regions, frame.image,
                            runtime, crops)
            except Exception as exc:  # a background crop's own model run: not the frame's
                log.debug("no candidate negative: %s", exc)

    def _crops_seen(self, lane: _Lane, crops: CropResults, runtime: ModelRuntime) -> None:
        if self._shadow is not None:
            for i, top in enumerate(crops.tops):
                self._mirror(crops.images[i], runtime.labels[top])
        if self.samples is not None:
            least = crops.confidences.index(min(crops.confidences))
            self.samples.offer(lane.source.camera_id, crops.images[least],
                               crops.inference(least), runtime)

    def _inference_error(self, lane: _Lane, runtime: ModelRuntime, exc: Exception) -> None:
        lane.acc.add_error()
        log.warning("inference error on %s: %s", lane.source.camera_id, exc,
                    extra={"camera_id": lane.source.camera_id})
        self._count_failure(runtime, str(exc))

    def _whole_frame(self, lane: _Lane, frame: Frame, runtime: ModelRuntime) -> None:
        """Frame mode: gate, infer, count, debounce, mirror, sample."""
        if lane.gate is not None and lane.gate.static(frame.image, frame.captured_at):
            lane.acc.add_skipped()
            return
        age_ms = (time.monotonic() - frame.captured_at) * 1000.0
        try:
            result = runtime.infer(frame.image)
        except Exception as exc:  # ModelError, or OpenCV refusing an odd frame
            self._inference_error(lane, runtime, exc)
            return
        self._failures = 0
        lane.acc.add(result, (time.monotonic() - frame.captured_at) * 1000.0, age_ms)
        label = runtime.labels[result.top]
        if lane.debounce.update(label, result.confidence) is not None:
            self._events.emit("detection", release_id=runtime.release_id,
                              camera_id=lane.source.camera_id, label=label,
                              confidence=min(1.0, result.confidence))
        if self._shadow is not None:
            self._mirror(frame.image, label)
        if self.samples is not None:
            self.samples.offer(lane.source.camera_id, frame.image, result, runtime)

    def _mirror(self, image: Image, active_label: str) -> None:
        """Run the shadow candidate on this frame when its share is due; compare only."""
        shadow, acc = self._shadow, self._shadow_acc
        if shadow is None or acc is None:
            return
        candidate, fraction = shadow
        self._shadow_credit += fraction
        if self._shadow_credit < 1.0:
            return
        self._shadow_credit -= 1.0
        try:
            result = candidate.infer(image)
        except Exception as exc:
            acc.add_error()
            log.debug("shadow %s failed on a frame: %s", candidate.release_id, exc,
                      extra={"release_id": candidate.release_id})
            return
        acc.add(result.top, active_label, result.inference_ms)

    def _count_failure(self, runtime: ModelRuntime, reason: str) -> None:
        self._failures += 1
        if self._failures < self.failures_before_rollback or self._failure_reported is runtime:
            return
        self._failure_reported = runtime
        detail = (f"release {runtime.release_id} failed on {self._failures} consecutive "
                  f"frames: {reason}")
        log.error(detail)
        if self._on_failure is not None:
            try:
                self._on_failure(runtime, detail)
            except Exception:
                log.exception("failure handler failed")

    # -- windows -----------------------------------------------------------------------------
    def _open_window(self, runtime: ModelRuntime | None,
                     shadow: tuple[ModelRuntime, float] | None = None) -> None:
        now = time.monotonic()
        self._shadow_acc = (ShadowAccumulator(shadow[0].release_id, shadow[0].labels)
                            if shadow is not None else None)
        self._shadow_credit = 0.0
        self._window_started = datetime.now(UTC)
        self._window_end = now + self.window_seconds
        manifest = runtime.manifest if runtime is not None else None
        for lane in self._lanes:
            lane.acc = WindowAccumulator(
                lane.source.camera_id,
                manifest.labels if manifest else None,
                manifest.reference_profile if manifest else None,
                mode=lane.source.config.mode,
            )
            if lane.regions is not None:
                lane.regions.close_window()  # what was counted before belongs to no window
            lane.next_due = min(lane.next_due, now) if lane.next_due else now

    def _close_window_safely(self, runtime: ModelRuntime | None) -> None:
        try:
            self._close_window(runtime)
        except Exception:  # telemetry must never stop inference (the outbox never raises)
            log.exception("could not close the telemetry window")

    def _close_window(self, runtime: ModelRuntime | None) -> None:
        """Queue the window, numbered and carrying the drop counts as the outbox stores it."""
        self._sender.send(self._window_body(runtime))

    def _window_body(self, runtime: ModelRuntime | None) -> TelemetryWindow:
        """The closing window without its seq and drop counts (the outbox adds them)."""
        now = time.monotonic()
        cameras = []
        for lane in self._lanes:
            counters = lane.source.counters()
            regions = lane.regions.close_window() if lane.regions is not None else None
            cameras.append(lane.acc.close(
                lane.source.state, counters - lane.seen, now,
                mode=None if self.previous_protocol else lane.source.config.mode,
                regions=None if self.previous_protocol else regions))
            lane.seen = counters
        cpu, rss = self._sampler.sample()
        manifest = runtime.manifest if runtime is not None else None
        return TelemetryWindow(
            device_id=self.device_id,
            seq=0,
            release_id=manifest.release_id if manifest else None,
            model_version=manifest.model_version if manifest else None,
            window_start=self._window_started,
            window_end=datetime.now(UTC),
            cameras=cameras,
            cpu_percent=cpu,
            rss_bytes=rss,
            shadow=self._shadow_acc.close() if self._shadow_acc is not None else None,
        )
