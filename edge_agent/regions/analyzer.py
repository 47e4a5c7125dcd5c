"""One camera in regions mode: moving regions -> crops -> one model run -> tracks -> events.

The boxes classified in a frame are, first, the last boxes of animal tracks that no
moving region covers (a resting animal fades into the background model, and a crop at
its last box asks whether it is still there), then the moving regions, largest first,
up to ``region_max_per_frame``. A crop whose label is a background label (the release's
``background_labels`` and the agent's ``detection_ignore_labels``) votes "no animal"; an
animal label below the animal confidence (the release's ``animal_min_confidence``, else
the agent's ``detection_min_confidence``) abstains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..camera_config import CameraConfig
from ..runtime import CropResults, ModelRuntime
from .boxes import Box, centre, inside, iou, normalised
from .condition import CONDITIONS, condition_of
from .crops import CropCutter
from .proposals import MotionRegions
from .stats import RegionCounts, RegionWindow
from .tracker import Changes, Observation, Track, Tracker

U8 = npt.NDArray[np.uint8]
# emit(kind, **DeviceEvent fields): the pipeline's event log, with the camera filled in.
Emit = Callable[..., Any]
PATH_POINTS = 32  # DeviceEvent.path's limit


class RegionAnalyzer:
    def __init__(self, camera: CameraConfig, emit: Emit, ignore_labels: frozenset[str],
                 min_confidence: float, previous_protocol: bool = False) -> None:
        self.camera = camera
        self._emit = emit
        self._ignore = ignore_labels
        self._default_confidence = min_confidence
        self._previous_protocol = previous_protocol
        self.motion = MotionRegions(camera)
        self.tracker = Tracker(ignore_labels, camera.track_confirm_frames,
                               camera.track_coast_seconds, path_limit=PATH_POINTS,
                               reid_seconds=camera.track_reid_seconds)
        self.window = RegionWindow()
        self.counts = RegionCounts()
        self.condition_index = -1  # of the last analysed frame
        self.frames = 0  # analysed
        self.boxes: list[Box] = []  # classified in the last frame
        self._probes: list[int | None] = []  # track id of each box cut at a resting track
        self._runtime: ModelRuntime | None = None
        self._cutter: CropCutter | None = None
        self._min_confidence = min_confidence
        self._size = (1, 1)

    def _use(self, runtime: ModelRuntime) -> None:
        """Take a (new) model's input size, crop spec and labels; tracks carry on."""
        m = runtime.manifest
        self._runtime = runtime
        self._cutter = CropCutter(m.input.width, m.input.height, m.crops,
                                  self.camera.region_max_per_frame)
        runtime.reserve(self.camera.region_max_per_frame)
        self.tracker.background = frozenset(m.background_labels) | self._ignore
        self._min_confidence = m.animal_min_confidence or self._default_confidence

    def analyse(self, bgr: U8, now: float, runtime: ModelRuntime) -> CropResults | None:
        """Find, classify and track the animals in one frame; None when nothing was cut.
        Raises what the model raises (ModelError) before any track changes."""
        if runtime is not self._runtime:
            self._use(runtime)
        assert self._cutter is not None
        self._size = (bgr.shape[1], bgr.shape[0])
        self.frames += 1
        # Where each animal tracked so far should be now: a moving region split into
        # bodies keeps one animal's parts together (its head is not a second animal).
        moving = self.motion(bgr, [t.predicted(now) for t in self.tracker.resting()])
        streaks = self.motion.streaks() if self.camera.rain_condition else 0.0
        self.condition_index = CONDITIONS.index(condition_of(*self.motion.light(), streaks))
        self._choose(moving)
        results = None
        if self.boxes:
            results = runtime.classify_crops(self._cutter.cut(bgr, self.boxes))
        changes = self.tracker.update(self._observations(runtime, results), now)
        self._count(len(moving), now)
        self._announce(changes, runtime)
        return results

    def cut(self, bgr: U8, boxes: Sequence[Box]) -> U8:
        """Crops of ``boxes`` as the model takes them (into the buffer of this frame's
        crops: use them before the next frame)."""
        assert self._cutter is not None
        return self._cutter.cut(bgr, boxes)

    def stop(self) -> None:
        """The camera stops: every track ends, an announced one with ``animal_left`` and
        its dwell so far, so no animal is left open."""
        if self._runtime is not None:
            self._announce(self.tracker.end_all(), self._runtime)
        self.counts.live_tracks = self.counts.live_animals = 0

    def _choose(self, moving: Sequence[Box]) -> None:
        limit = self.camera.region_max_per_frame
        resting = [t for t in self.tracker.resting()
                   if not any(iou(t.box, m) >= self.tracker.iou_min or _inside(t.box, m)
                              for m in moving)][:limit]
        # What still moves inside a resting animal's box is that animal (the background
        # model absorbs it unevenly): its crop answers for them.
        moving = [m for m in moving if not any(inside(m, t.box) > 0.6 for t in resting)]
        self.boxes = [t.box for t in resting] + moving[:limit - len(resting)]
        self._probes = [t.track_id for t in resting]
        self._probes += [None] * (len(self.boxes) - len(resting))

    def _observations(self, runtime: ModelRuntime, results: CropResults | None
                      ) -> list[Observation]:
        if results is None:
            return []
        background, least = self.tracker.background, self._min_confidence
        out = []
        for box, probe, top, conf in zip(self.boxes, self._probes, results.tops,
                                         results.confidences, strict=True):
            label = runtime.labels[top]
            rejected = label in background
            self.counts.rejected += rejected
            out.append(Observation(box, label, conf, rejected or conf >= least, probe))
        return out

    def _count(self, proposed: int, now: float) -> None:
        counts = self.counts
        counts.proposed += proposed
        counts.classified += len(self.boxes)
        counts.live_tracks = len(self.tracker.tracks)
        width, height = self._size
        for t in self.tracker.tracks:
            if t.confirmed and not self.tracker.is_animal(t):
                self.window.relabel(t.track_id, None)
        animals = []
        for t in self.tracker.in_view(now):
            cx, cy = centre(t.box)
            animals.append((t.track_id, t.label or "", cx / width, cy / height))
        counts.live_animals = len(animals)
        self.window.add_frame([(b[2] - b[0]) / width for b in self.boxes], animals,
                              self.motion.edge_layout())

    def _announce(self, changes: Changes, runtime: ModelRuntime) -> None:
        for t in changes.appeared:
            if self._previous_protocol:  # a control plane that knows detections only
                self._emit("detection", release_id=runtime.release_id, label=t.label,
                           confidence=t.confidence)
                continue
            self._emit("animal_appeared", release_id=runtime.release_id, label=t.label,
                       confidence=t.confidence, track_id=t.track_id, box=self._box(t))
        for t in changes.ended:
            if t.announced and not self._previous_protocol:
                width, height = self._size
                self._emit("animal_left", release_id=runtime.release_id, label=t.label,
                           confidence=t.confidence, track_id=t.track_id, box=self._box(t),
                           dwell_seconds=t.dwell_seconds,
                           path=[(min(max(x / width, 0.0), 1.0), min(max(y / height, 0.0), 1.0))
                                 for x, y in t.sampled_path(PATH_POINTS)])

    def animals_now(self) -> list[tuple[tuple[float, float, float, float], str, float, int]]:
        """The confirmed animal tracks of the last frame: box, label, confidence, id."""
        return [(self._box(t), t.label or "", t.confidence, t.track_id)
                for t in self.tracker.tracks if t.confirmed and self.tracker.is_animal(t)]

    def _box(self, track: Track) -> tuple[float, float, float, float]:
        return normalised(track.box, *self._size)

    def close_window(self) -> dict[str, object]:
        """This window's region fields; the counts start again."""
        fields = self.window.fields() | {"background_edges": self.motion.background_edges()}
        self.window.reset()
        return fields


def _inside(track_box: Box, region: Box) -> bool:
    """The track's centre lies in the moving region."""
    cx, cy = centre(track_box)
    return region[0] <= cx <= region[2] and region[1] <= cy <= region[3]
