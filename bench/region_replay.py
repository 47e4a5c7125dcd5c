"""The region accuracy bench's clean and oracle rows from recorded clips: seconds a run
instead of minutes, for trying tracker and split rules on the same frames.

    python bench/region_replay.py --model /work/models/fullset/model --seeds 20 21 22 23 24
    python bench/region_replay.py --model M --seeds 20 21 --variants oracle --fragments

The first run films each clip once (as ``region_accuracy.py`` does: day light, 10
frames/s) and records, per frame, the motion mask the regions are cut from (after the
background subtractor and the morphology: it depends on the pixels alone, not on the
tracks), the light and the truth; and, per clip, the model's result for every crop box it
was asked about. Later runs replay the recording through the agent's own
``RegionAnalyzer`` of the tree they run in: its motion regions take the recorded mask
(contours, merging, the split into bodies and its rejoin run as on a camera), and a crop
at a box the recording holds takes the recorded result; a box it does not hold (a rule
that cuts new boxes) renders that frame again and runs the model on it, and the result
is kept. So a replay gives exactly what ``region_accuracy.py --variants clean oracle``
gives on the same clips (the same tracks, counts and causes), from any tree: before and
after a change, on the same recorded frames.

Recordings go to ``--record-dir`` (a clip of 150 s: about 4 MB); results are keyed by
the model directory's report, so another model records its own. A change to the
background subtractor or the morphology needs a new recording (another directory).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _count_causes import causes_table, off_windows
from _region_report import animal_table, fragments, summary
from _track_score import Run
from region_accuracy import FPS, VARIANTS, OracleLabels, release_or_say, scene

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.boxes import Box
from edge_agent.regions.proposals import MotionRegions
from edge_agent.runtime import CropResults, ModelRuntime
from trainer.synth import FrameObject

U8 = npt.NDArray[np.uint8]
BoxKey = tuple[int, float, float, float, float]  # frame, box


@dataclass
class Recording:
    """One clip's frames as the regions see them."""

    size: tuple[int, int]  # the frame's height, width
    masks: list[U8] = field(default_factory=list)  # np.packbits of each frame's mask
    mask_shape: tuple[int, int] = (0, 0)
    light: list[tuple[float, float, float]] = field(default_factory=list)  # luma, sat, streaks
    objects: list[list[FrameObject]] = field(default_factory=list)


class RecordingMotion(MotionRegions):
    """The camera's motion regions, keeping each frame's mask in ``recording``."""

    def __init__(self, camera: CameraConfig, recording: Recording) -> None:
        super().__init__(camera)
        self.recording = recording

    def __call__(self, bgr: U8, known: Any = ()) -> list[Box]:
        boxes = super().__call__(bgr, known)
        # With no regions the mask may hold moving pixels (light change): none are cut.
        mask = self._mask if boxes else np.zeros_like(self._mask)
        self.recording.mask_shape = (mask.shape[0], mask.shape[1])
        self.recording.masks.append(np.packbits(mask > 0))
        self.recording.light.append((*self.light(), self.streaks()))
        return boxes


class ReplayMotion(MotionRegions):
    """The camera's motion regions on a recording's masks: frame ``k`` is set before each
    call; everything after the mask runs as on the camera."""

    def __init__(self, camera: CameraConfig, recording: Recording) -> None:
        super().__init__(camera)
        self.recording = recording
        self.k = 0

    def __call__(self, bgr: U8, known: Any = ()) -> list[Box]:
        rec = self.recording
        if self._size != rec.size:
            self._allocate(*rec.size)
        bits = np.unpackbits(rec.masks[self.k])[:self._mask.size]
        np.multiply(bits.reshape(rec.mask_shape), 255, out=self._mask)
        if not self._mask.any():
            return []
        contours, _ = cv2.findContours(self._mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        parts = [cv2.boundingRect(c) for c in contours]
        height, width = rec.size
        return self._boxes(parts, width / self._mask.shape[1], height / self._mask.shape[0],
                           known)

    def light(self) -> tuple[float, float]:
        luma, sat, _ = self.recording.light[self.k]
        return luma, sat

    def streaks(self) -> float:
        return self.recording.light[self.k][2]


def _key(k: int, box: Box) -> BoxKey:
    return (k, *(round(v, 3) for v in box))  # type: ignore[return-value]


class RecordedResults:
    """The model's crops by frame and box: recorded ones from ``results``, others from
    the model on the frame rendered again (``render``), kept in ``results``."""

    def __init__(self, runtime: ModelRuntime, analyzer: RegionAnalyzer,
                 results: dict[BoxKey, tuple[int, float]], render: Any) -> None:
        self.manifest, self.release_id = runtime.manifest, runtime.release_id
        self.labels = list(runtime.labels)
        self.runtime, self.analyzer, self.results, self.render = runtime, analyzer, results, render
        self.k = 0
        self.misses = 0

    def reserve(self, capacity: int) -> None:
        self.runtime.reserve(capacity)

    def classify_crops(self, images: U8) -> CropResults:
        keys = [_key(self.k, b) for b in self.analyzer.boxes]
        missing = [i for i, key in enumerate(keys) if key not in self.results]
        if missing:
            self.misses += len(missing)
            frame = self.render(self.k)
            got = self.runtime.classify_crops(
                self.analyzer.cut(frame, [self.analyzer.boxes[i] for i in missing]))
            for j, i in enumerate(missing):
                self.results[keys[i]] = (got.tops[j], got.confidences[j])
        tops = [self.results[key][0] for key in keys]
        confidences = [self.results[key][1] for key in keys]
        probs = np.eye(len(self.labels), dtype=np.float32)[tops]
        return CropResults(probs, probs, np.zeros((len(tops), 1), np.float32), images, tops,
                           confidences, 0.0)


class RecordingRuntime:
    """The model, keeping each crop's result by frame and box."""

    def __init__(self, runtime: ModelRuntime, analyzer: RegionAnalyzer,
                 results: dict[BoxKey, tuple[int, float]]) -> None:
        self.manifest, self.release_id = runtime.manifest, runtime.release_id
        self.labels = list(runtime.labels)
        self.runtime, self.analyzer, self.results = runtime, analyzer, results
        self.k = 0

    def reserve(self, capacity: int) -> None:
        self.runtime.reserve(capacity)

    def classify_crops(self, images: U8) -> CropResults:
        got = self.runtime.classify_crops(images)
        for box, top, conf in zip(self.analyzer.boxes, got.tops, got.confidences,
                                  strict=True):
            self.results[_key(self.k, box)] = (top, conf)
        return got


def _camera() -> CameraConfig:
    return CameraConfig(camera_id="bench", source="bench", sample_fps=FPS)


def record(a: argparse.Namespace, runtime: ModelRuntime, settings: dict[str, object],
           seed: int) -> tuple[Recording, dict[BoxKey, tuple[int, float]]]:
    """Film clip ``seed`` once through the agent with the model: its masks and results."""
    s = scene(a.photos, settings, a.seconds, seed, "day", True, a.cutout_cache, a.photo_stride)
    analyzer = RegionAnalyzer(_camera(), lambda *x, **kw: None, frozenset(), 0.6)
    rec = Recording((s.spec.height, s.spec.width))
    analyzer.motion = RecordingMotion(analyzer.camera, rec)
    results: dict[BoxKey, tuple[int, float]] = {}
    labeller = RecordingRuntime(runtime, analyzer, results)
    for k in range(s.frame_count):
        f = s.render(k)
        rec.objects.append(f.objects)
        labeller.k = k
        analyzer.analyse(f.image, k / FPS, labeller)  # type: ignore[arg-type]
    return rec, results


def replay(a: argparse.Namespace, rec: Recording, labeller: Any, analyzer: RegionAnalyzer,
           motion: ReplayMotion) -> Run:
    """``region_accuracy.run_clip`` on a recording."""
    out = Run(window_frames=a.window_frames)
    seen_truth: Counter[str] = Counter()
    seen_ids: set[int] = set()
    started = time.perf_counter()
    height, width = rec.size
    blank = np.zeros((height, width, 3), np.uint8)
    for k, objects in enumerate(rec.objects):
        motion.k = labeller.k = k
        labeller.objects = objects
        analyzer.analyse(blank, k / FPS, labeller)
        for t in analyzer.tracker.tracks:
            if t.confirmed and analyzer.tracker.is_animal(t):
                out.agent[t.track_id].boxes[k] = t.box
                out.agent[t.track_id].label = t.label
        for o in objects:
            if o.kind != "animal":
                continue
            out.see_animal(k, o.track_id, o.label, o.box, width, o.visible_fraction, seen_ids,
                           seen_truth)
        out.frames += 1
        if out.frames % a.window_frames == 0:
            out.window_ids.append((analyzer.window.track_ids(), seen_ids))
            fields = analyzer.close_window()
            out.windows.append((Counter(cast(dict[str, int], fields["animals"])), seen_truth))
            seen_truth, seen_ids = Counter(), set()
    analyzer.stop()
    out.seconds = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--window", type=float, default=30.0)
    ap.add_argument("--variants", nargs="+", choices=["clean", "oracle"],
                    default=["clean", "oracle"])
    ap.add_argument("--record-dir", type=Path, default=Path("/tmp/region-replay"))
    ap.add_argument("--cutout-cache", type=Path, default=None)
    ap.add_argument("--photo-stride", type=int, default=0,
                    help="as region_accuracy.py's: clip SEED films the test photos from the "
                    "SEED x N-th on (11: per-track accuracy on about 80 photos, not 15)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fragments", action="store_true",
                    help="the count error by cause, each track's animals, the windows off")
    ap.add_argument("--set", nargs="+", default=[], metavar="WHAT.NAME=VALUE",
                    help="replays only: a camera setting (camera.region_split_neck=0.6), "
                    "a tracker attribute (tracker.cover_seconds=5), an analyzer or a motion "
                    "regions one")
    a = ap.parse_args(argv)
    if a.photo_stride < 0:
        print(f"error: --photo-stride {a.photo_stride}: give 0 or more", file=sys.stderr)
        return 2
    release = release_or_say(a.model)
    if release is None:
        return 2
    path, manifest, settings = release
    a.window_frames = max(1, round(a.window * FPS))
    runtime = ModelRuntime(path, manifest, a.threads)
    tag = hashlib.sha256((a.model / "report.json").read_bytes()).hexdigest()[:12]
    a.record_dir.mkdir(parents=True, exist_ok=True)
    done: list[tuple[str, Run]] = []
    misses = 0
    for seed in a.seeds:
        name = f"seed{seed}-{a.seconds:g}s" + (f"-stride{a.photo_stride}" if a.photo_stride else "")
        clip = a.record_dir / f"{name}.pkl"
        res_path = a.record_dir / f"{name}-{tag}.results.pkl"
        if clip.exists() and res_path.exists():
            rec = Recording(**pickle.loads(clip.read_bytes()))
            results = pickle.loads(res_path.read_bytes())
        else:
            t0 = time.perf_counter()
            rec, results = record(a, runtime, settings, seed)
            clip.write_bytes(pickle.dumps(vars(rec)))  # a dict: loads from any module
            print(f"recorded seed {seed} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        before = len(results)
        rendered = _renderer(a, settings, seed)
        for key in a.variants:
            analyzer, motion = _replay_analyzer(a.set, rec)
            labeller: Any = (OracleLabels(runtime, analyzer) if key == "oracle"
                             else RecordedResults(runtime, analyzer, results, rendered))
            if key == "oracle":
                labeller.k = 0
            done.append((VARIANTS[key][0], replay(a, rec, labeller, analyzer, motion)))
        if len(results) > before or not res_path.exists():
            res_path.write_bytes(pickle.dumps(results))
            misses += len(results) - before
    print(f"model {a.model} ({manifest.artifact.precision}, animal_min_confidence "
          f"{manifest.animal_min_confidence:.3f}); recorded clips, seeds "
          f"{' '.join(map(str, a.seeds))}; crops not recorded, run now: {misses}\n")
    table = animal_table(a, _in_order(done, a))
    summary(table, oracle_name=VARIANTS["oracle"][0])
    if a.fragments:
        causes_table(table)
        fragments(_in_order(done, a))
        for name, runs in table.items():
            for seed, run in zip(a.seeds, runs, strict=True):
                print(f"\n{name}, seed {seed}: windows off", *off_windows(run), sep="\n")
    return 0


def _replay_analyzer(settings: list[str], rec: Recording
                     ) -> tuple[RegionAnalyzer, ReplayMotion]:
    """An analyzer on ``rec`` with ``--set``'s camera settings and tracker, analyzer and
    motion regions attributes."""
    given: dict[str, dict[str, float]] = {"camera": {}, "tracker": {}, "analyzer": {},
                                          "motion": {}}
    for item in settings:
        name, _, value = item.partition("=")
        what, _, attr = name.partition(".")
        given[what][attr] = float(value)
    camera, tracker, analyzer_attrs = given["camera"], given["tracker"], given["analyzer"]
    analyzer = RegionAnalyzer(_camera().model_copy(update=camera), lambda *x, **kw: None,
                              frozenset(), 0.6)
    for attr, number in tracker.items():
        old = getattr(analyzer.tracker, attr)
        setattr(analyzer.tracker, attr, type(old)(number))
    for attr, number in analyzer_attrs.items():
        setattr(analyzer, attr, number)
    motion = ReplayMotion(analyzer.camera, rec)
    analyzer.motion = motion
    for attr, number in given["motion"].items():
        setattr(motion, attr, type(getattr(motion, attr))(number))
    return analyzer, motion


def _in_order(done: list[tuple[str, Run]], a: argparse.Namespace) -> list[tuple[str, Run]]:
    """Variant by variant, seeds in order (as region_accuracy.py's rows)."""
    return [d for name in [VARIANTS[v][0] for v in a.variants] for d in done if d[0] == name]


def _renderer(a: argparse.Namespace, settings: dict[str, object], seed: int) -> Any:
    scenes: list[Any] = []

    def render(k: int) -> U8:
        if not scenes:
            scenes.append(scene(a.photos, settings, a.seconds, seed, "day", True,
                                a.cutout_cache, a.photo_stride))
        return cast(U8, scenes[0].render(k).image)
    return render


if __name__ == "__main__":
    raise SystemExit(main())
