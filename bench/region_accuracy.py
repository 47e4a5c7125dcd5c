"""What the agent's regions mode gets right on wide park clips of held-out photos, side by
side in one run: per-track accuracy (whole-frame classification of the same clips
beside it), animal counts per window against the ground truth, false animals on clips
without animals, and accuracy under night, IR, rain, motion blur and heavy JPEG against
the same clip clean.

    python bench/region_accuracy.py --model out/lite0-regions            # a trainer out dir
    python bench/region_accuracy.py --model out/m --seconds 120 --empty-seconds 600
    python bench/region_accuracy.py --model out/m --seeds 12 13 14 15 --variants clean

One seed and 150 s is the fast mode (about ten scored tracks). Enough tracks to tell
97 % from less takes hundreds: more seeds (each a different clip: other photos, paths
and distractors), pooled. ``--tracks 120`` takes seeds from ``--seed`` up until their
clips hold that many scored animals (read from the sidecar, no pixels rendered; 120 of
120 right is a 95 % lower bound of 97.0 %); ``--dry-run`` prints those seeds and stops.
Every figure comes with its 95 % interval: Clopper-Pearson for accuracies, the exact
Poisson bound for false animals per camera-hour.

The clips (``trainer.synth``) film cut-outs of the model's **test** photos only (the split
parameters come from the model's report.json). Every variant of the animal clip has the
same seed, so the same animals walk the same paths with the same boxes; "clean" is day
light, and the others are the scene's night, IR and rain, or the clean frames with motion
blur or heavy JPEG. A paired table compares each condition with clean animal by animal
(the difference in per-track accuracy with Newcombe's interval for paired shares).
Cameras split no region into bodies by default, and neither does the bench (``--split``
does, ``--split-beside`` runs both).
Frames go to the agent's own ``RegionAnalyzer`` (motion regions, crops, one ONNX Runtime
run, tracks) as a camera would deliver them, at the clip's 10 frames/s. The "oracle"
variant (``--variants clean oracle``) films the clean clip again with the model replaced
by the sidecar (``OracleLabels``: every crop read right): what the counts still miss there
is the regions and the tracker's (fragments, merges); the rest of the clean row's error is
the model's misread crops. Every condition has its oracle too (``night-oracle``, ...): a
second paired table compares each against the clean oracle, so a condition's loss splits
into the regions' and tracker's share and the model's. The agent's cost
per frame is measured by ``bench/agent_pipeline.py`` (regions tables), not here.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import cast

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _count_causes import causes_table
from _region_report import (  # bench/ is on sys.path: scripts run from it
    ORACLE,
    animal_table,
    false_animals,
    fragments,
    paired,
    summary,
)
from _track_score import MIN_WIDTH, Run

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.boxes import inside
from edge_agent.runtime import CropResults, ModelRuntime
from protocols import ModelVersionCreate, ReleaseManifest
from trainer.synth import FrameObject, PhotoPool, Scene, SceneSpec, Schedule, apply_shift

FPS = 10.0
SPLIT_NECK = 0.6  # with --split: regions split into bodies (a camera's opt-in; default 0)


def load_release(model_dir: Path) -> tuple[Path, ReleaseManifest, dict[str, object]]:
    """The primary artifact, a manifest as the control plane would build it, the settings."""
    reg = ModelVersionCreate.model_validate_json((model_dir / "registration.json").read_text())
    report = json.loads((model_dir / "report.json").read_text())
    by_sha = {a.sha256: a for a in reg.artifacts}
    primary = by_sha[reg.primary_sha256]
    name = "model.int8.onnx" if primary.precision == "int8" else "model.onnx"
    manifest = ReleaseManifest(
        release_id="bench", model_name=reg.model_name, model_version="1", labels=reg.labels,
        input=reg.input, outputs=reg.outputs, artifact=primary,
        reference_profile=reg.reference_profile, golden_inputs=reg.golden_inputs,
        background_labels=reg.background_labels,
        animal_min_confidence=reg.animal_min_confidence, crops=reg.crops)
    return model_dir / name, manifest, report["settings"]


def release_or_say(model_dir: Path) -> tuple[Path, ReleaseManifest, dict[str, object]] | None:
    """``load_release``, or None after a one-line error naming the fix."""
    try:
        return load_release(model_dir)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {model_dir}: {exc}; pass --model with a trainer out dir", file=sys.stderr)
        return None


class OracleLabels:
    """The model's stand-in that reads every crop right, from the truth: the label of the
    animal most of whose box lies in the region (at least half of it), else "no animal"
    (the release's first background label). Confidence 1."""

    def __init__(self, runtime: ModelRuntime, analyzer: RegionAnalyzer) -> None:
        self.manifest, self.release_id = runtime.manifest, runtime.release_id
        self.labels = list(runtime.labels)
        self.other = self.labels.index(runtime.manifest.background_labels[0])
        self.analyzer = analyzer  # its boxes are the regions being classified
        self.objects: list[FrameObject] = []  # the frame's truth

    def reserve(self, capacity: int) -> None:
        pass

    def classify_crops(self, images: np.ndarray) -> CropResults:
        tops = []
        for region in self.analyzer.boxes:
            best, top = 0.5, self.other
            for o in self.objects:
                x, y, w, h = o.box
                share = inside((x, y, x + w, y + h), region) if o.kind == "animal" else 0.0
                if share >= best:
                    best, top = share, self.labels.index(o.label)
            tops.append(top)
        probs = np.eye(len(self.labels), dtype=np.float32)[tops]
        return CropResults(probs, probs, np.zeros((len(tops), 1), np.float32), images, tops,
                           [1.0] * len(tops), 0.0)


def run_clip(frames: Iterator[tuple[np.ndarray, list[FrameObject]]], runtime: ModelRuntime,
             window_frames: int, whole_frame: bool = False, oracle: bool = False,
             split: bool = False, confirm_frames: int | None = None) -> Run:
    """Feed frames (image, truth objects) to a fresh analyzer; record what it tracked.
    ``oracle``: crops are labelled from the truth (``OracleLabels``), not by the model;
    ``split``: regions holding several animals are split into bodies at ``SPLIT_NECK``
    (else the camera's default, never); ``confirm_frames``: the camera's
    ``track_confirm_frames`` (None: its default)."""
    camera = CameraConfig(camera_id="bench", source="bench", sample_fps=FPS)
    if split:
        camera = camera.model_copy(update={"region_split_neck": SPLIT_NECK})
    if confirm_frames is not None:
        camera = camera.model_copy(update={"track_confirm_frames": confirm_frames})
    analyzer = RegionAnalyzer(camera, lambda *a, **kw: None, frozenset(), 0.6)
    labeller = OracleLabels(runtime, analyzer) if oracle else runtime
    out = Run(window_frames=window_frames)
    seen_truth: Counter[str] = Counter()
    seen_ids: set[int] = set()
    started = time.perf_counter()
    width = 1
    for k, (image, objects) in enumerate(frames):
        width = image.shape[1]
        if isinstance(labeller, OracleLabels):
            labeller.objects = objects
        analyzer.analyse(image, k / FPS, labeller)  # type: ignore[arg-type]
        for t in analyzer.tracker.tracks:
            if t.confirmed and analyzer.tracker.is_animal(t):
                out.agent[t.track_id].boxes[k] = t.box
                out.agent[t.track_id].label = t.label
        animals = [o for o in objects if o.kind == "animal"]
        for o in animals:
            out.see_animal(k, o.track_id, o.label, o.box, width, o.visible_fraction, seen_ids,
                           seen_truth)
        if whole_frame and animals:
            result = runtime.infer(image)
            label = runtime.labels[result.top]
            for o in animals:
                # a Counter of confidences: its most_common picks the heaviest label
                out.whole[o.track_id][label] += result.confidence  # type: ignore[assignment]
        out.frames += 1
        if out.frames % window_frames == 0:
            out.window_ids.append((analyzer.window.track_ids(), seen_ids))
            fields = analyzer.close_window()
            animals_seen = cast(dict[str, int], fields["animals"])
            out.windows.append((Counter(animals_seen), seen_truth))
            seen_truth, seen_ids = Counter(), set()
    analyzer.stop()
    out.seconds = time.perf_counter() - started
    return out


def scene(photos: Path, settings: dict[str, object], seconds: float, seed: int,
          condition: str, animals: bool, cutouts: Path | None, photo_stride: int = 0) -> Scene:
    """Clip ``seed`` of the test photos; its photos from the ``seed * photo_stride``-th of
    each label on (0: every clip films the pool's first photos)."""
    schedule = (Schedule(empty_share=0.4, animals_per_minute=4, distractors_per_minute=2)
                if animals else
                Schedule(empty_share=1.0, animals_per_minute=0, distractors_per_minute=4))
    pool = PhotoPool(photos, "test", int(settings["seed"]),  # type: ignore[call-overload]
                     float(settings["val_fraction"]),  # type: ignore[arg-type]
                     float(settings["test_fraction"]))  # type: ignore[arg-type]
    return Scene(SceneSpec(seconds=seconds, fps=FPS, seed=seed, schedule=schedule,
                           conditions=(condition,), photos=pool, cutout_cache=cutouts,
                           photo_start=seed * photo_stride))


def frames_of(s: Scene, post: str | None = None, seed: int = 0
              ) -> Iterator[tuple[np.ndarray, list[FrameObject]]]:
    for k in range(s.frame_count):
        f = s.render(k)
        image = f.image
        if post is not None:
            image = apply_shift(image, post, 0.7, np.random.default_rng([seed, k]))
        yield image, f.objects


def scored_tracks(s: Scene) -> int:
    """Animals of clip ``s`` that per-track accuracy scores (``score_tracks``' rule: in
    view at least 5 frames, median width at least ``MIN_WIDTH``), from the sidecar alone."""
    widths: dict[int, list[float]] = {}
    for k in range(s.frame_count):
        for o in s.objects(s.rows(k)):
            if o.kind == "animal":
                widths.setdefault(o.track_id, []).append(o.box[2] / s.spec.width)
    return sum(len(w) >= 5 and float(np.median(w)) >= MIN_WIDTH for w in widths.values())


def seeds_for_tracks(a: argparse.Namespace, settings: dict[str, object],
                     most: int = 500) -> tuple[list[int], int]:
    """Seeds from ``a.seed`` up whose animal clips hold ``a.tracks`` scored animals."""
    seeds: list[int] = []
    total = 0
    for seed in range(a.seed, a.seed + most):
        if total >= a.tracks:
            break
        total += scored_tracks(scene(a.photos, settings, a.seconds, seed, "day", True,
                                     a.cutout_cache, a.photo_stride))
        seeds.append(seed)
    return seeds, total


_FILMED: dict[str, tuple[str, str, str | None]] = {  # key: name, scene condition, post
    "clean": ("clean", "day", None), "night": ("night", "night", None),
    "ir": ("ir", "ir", None), "rain": ("rain", "rain", None),
    "blur": ("motion blur", "day", "blur"), "jpeg": ("heavy JPEG", "day", "jpeg"),
}
# Every condition again with oracle labels ("night-oracle"; "oracle" is the clean clip's):
# a condition's loss that stays with every crop read right is the regions' and the
# tracker's (noise or streak regions, boxes that cut the animal, broken tracks), the rest
# is the model's misread crops.
VARIANTS = _FILMED | {"oracle": ("clean," + ORACLE, "day", None)} | {
    f"{key}-oracle": (f"{name},{ORACLE}", condition, post)
    for key, (name, condition, post) in _FILMED.items() if key != "clean"}
DEFAULT_VARIANTS = ["clean", "night", "ir", "rain", "blur", "jpeg"]


@dataclass(frozen=True)
class Job:
    """One clip through the agent: a process of its own with ``--jobs`` above 1."""

    seed: int
    seconds: float
    condition: str
    animals: bool = True
    post: str | None = None
    whole_frame: bool = False
    oracle: bool = False
    split: bool = False
    compare: bool = False  # read by ``--compare``'s model, not ``--model``'s


@dataclass(frozen=True)
class Context:
    """What every job needs: the model to load and the clips' settings."""

    model: Path
    manifest: ReleaseManifest
    threads: int
    photos: Path
    settings: dict[str, object]
    cutout_cache: Path | None
    window: int
    confirm_frames: int | None = None
    photo_stride: int = 0
    compare: tuple[Path, ReleaseManifest] | None = None  # a second model, its jobs' reader


_worker: tuple[Context, ModelRuntime, ModelRuntime | None] | None = None


def _start(ctx: Context) -> None:
    global _worker
    other = (ModelRuntime(ctx.compare[0], ctx.compare[1], ctx.threads)
             if ctx.compare is not None else None)
    _worker = (ctx, ModelRuntime(ctx.model, ctx.manifest, ctx.threads), other)


def _run(job: Job) -> Run:
    assert _worker is not None
    ctx, runtime, other = _worker
    if job.compare:
        assert other is not None
        runtime = other
    s = scene(ctx.photos, ctx.settings, job.seconds, job.seed, job.condition, job.animals,
              ctx.cutout_cache, ctx.photo_stride)
    return run_clip(frames_of(s, job.post, job.seed), runtime, ctx.window, job.whole_frame,
                    job.oracle, job.split, ctx.confirm_frames)


def run_jobs(ctx: Context, jobs: list[Job], processes: int) -> list[Run]:
    """Every job's run, in order; clips are independent, so up to ``processes`` at once
    (each its own ONNX Runtime session with ``threads``)."""
    if processes <= 1:
        _start(ctx)
        return [_run(j) for j in jobs]
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_start,
                             initargs=(ctx,)) as pool:
        return list(pool.map(_run, jobs))


def animal_jobs(a: argparse.Namespace) -> list[tuple[str, Job]]:
    """Every variant of every seed's animal clip; with ``--split-beside`` each again
    with the other region split setting, in the row after it; with ``--compare`` each
    clip again read by that model, right after it (the two alternate through the run)."""
    out = []
    readers = (False, True) if getattr(a, "compare", None) is not None else (False,)
    for key in a.variants:
        name, condition, post = VARIANTS[key]
        for split in split_settings(a):
            row = name if split == a.split else f"{name}, {SPLIT_NAMES[split]}"
            out += [(f"{row}, {a.compare}" if other else row,
                     Job(seed, a.seconds, condition, True, post,
                         key == "clean" and split == a.split and not other,
                         key.endswith("oracle"), split, other))
                    for seed in a.seeds for other in readers]
    return out


SPLIT_NAMES = {True: "regions split", False: "regions not split"}


def split_settings(a: argparse.Namespace) -> tuple[bool, ...]:
    """The region split settings to run: ``--split``'s, then with ``--split-beside``
    the other one."""
    return (a.split, not a.split) if a.split_beside else (a.split,)


EMPTY_CONDITIONS = ("day", "dusk", "night", "ir", "rain")
EMPTY_CLIP_SECONDS = 600.0


def empty_jobs(a: argparse.Namespace) -> list[tuple[str, Job]]:
    """Clips without animals, the empty seconds split over five conditions (with
    ``--split-beside`` each again with the other region split setting)."""
    per = a.empty_seconds / len(EMPTY_CONDITIONS)
    # Hours of footage as clips of at most EMPTY_CLIP_SECONDS, each its own park (seed):
    # more backdrops and distractor paths than one long clip, and clips for --jobs to share.
    chunks = max(1, math.ceil(per / EMPTY_CLIP_SECONDS))
    n = len(EMPTY_CONDITIONS)
    return [(c if split == a.split else f"{c}, {SPLIT_NAMES[split]}",
             Job(a.seeds[0] + 100 + n * j + i, per / chunks, c, animals=False, split=split))
            for split in split_settings(a)
            for i, c in enumerate(EMPTY_CONDITIONS)
            for j in range(chunks)] if a.empty_seconds > 0 else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True,
                    help="a trainer out dir (registration.json, report.json, model files)")
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--seconds", type=float, default=120.0, help="each animal clip's length")
    ap.add_argument("--empty-seconds", type=float, default=300.0,
                    help="clip without animals (distractors only), split over 5 conditions")
    ap.add_argument("--window", type=float, default=30.0, help="count window, seconds")
    ap.add_argument("--seed", type=int, default=11, help="the clip's seed (one clip)")
    ap.add_argument("--seeds", type=int, nargs="+",
                    help="several clips, pooled (more tracks; replaces --seed)")
    ap.add_argument("--tracks", type=int, default=0,
                    help="clips enough for this many scored animals (replaces --seeds)")
    ap.add_argument("--dry-run", action="store_true",
                    help="with --tracks: print the seeds and their scored animals, stop")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS,
                    help="conditions to film the animal clips in (the first is the reference)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cutout-cache", type=Path, default=None)
    ap.add_argument("--photo-stride", type=int, default=0,
                    help="clip SEED films each label's test photos from the SEED x N-th on "
                    "(0: every clip films the pool's first ones; 11 spreads 13 seeds over "
                    "the full set's 140-152 test photos of a label)")
    ap.add_argument("--fragments", action="store_true",
                    help="the count error by cause, and the truth tracks each agent track "
                    "overlaps (splits, swaps)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="clips run at once, each in a process of its own")
    ap.add_argument("--animal-min-confidence", type=float, default=None,
                    help="replace the model's calibrated animal confidence (the trade "
                    "between false animals and animals kept, without retraining)")
    ap.add_argument("--confirm-frames", type=int, default=None,
                    help="the cameras' track_confirm_frames (frames before a track counts; "
                    "default: the camera default)")
    ap.add_argument("--split", action="store_true",
                    help=f"regions holding several animals split into bodies "
                    f"(region_split_neck {SPLIT_NECK}; cameras default to 0: never)")
    ap.add_argument("--compare", type=Path, default=None,
                    help="a second trainer out dir: every animal clip read by it too, a "
                    "row each, paired against the first (the same animals)")
    ap.add_argument("--split-beside", action="store_true",
                    help="every clip also with the other region split setting: both in "
                    "one run")
    a = ap.parse_args(argv)
    a.seeds = a.seeds or [a.seed]
    if a.photo_stride < 0:
        print(f"error: --photo-stride {a.photo_stride}: give 0 or more", file=sys.stderr)
        return 2
    release = release_or_say(a.model)
    if release is None:
        return 2
    path, manifest, settings = release
    if a.animal_min_confidence is not None:
        if not 0 <= a.animal_min_confidence < 1:
            print(f"error: --animal-min-confidence {a.animal_min_confidence}: give a "
                  "confidence in [0, 1)", file=sys.stderr)
            return 2
        manifest = manifest.model_copy(
            update={"animal_min_confidence": a.animal_min_confidence})
    if a.tracks > 0:
        a.seeds, total = seeds_for_tracks(a, settings)
        print(f"--tracks {a.tracks}: seeds {a.seeds[0]}-{a.seeds[-1]} ({len(a.seeds)} clips "
              f"of {a.seconds:g} s) hold {total} scored animals")
        if a.dry_run:
            return 0
    window = max(1, round(a.window * FPS))
    print(f"model {a.model} ({manifest.artifact.precision}, labels {manifest.labels}, "
          f"background {manifest.background_labels}, animal_min_confidence "
          f"{manifest.animal_min_confidence:.3f}); clips of the test photos, seeds "
          f"{' '.join(map(str, a.seeds))}; {a.jobs} clip(s) at once, {a.threads} ORT "
          f"thread(s) each; track_confirm_frames {a.confirm_frames or 'default'}; photos from "
          f"seed x {a.photo_stride} on\n")
    compare = None
    if a.compare is not None:
        other = release_or_say(a.compare)
        if other is None:
            return 2
        compare = (other[0], other[1])
    ctx = Context(path, manifest, a.threads, a.photos, settings, a.cutout_cache, window,
                  a.confirm_frames, a.photo_stride, compare)
    animals, empty = animal_jobs(a), empty_jobs(a)
    runs = run_jobs(ctx, [j for _, j in animals + empty], a.jobs)
    done = [(n, r) for (n, _), r in zip(animals, runs, strict=False)]
    table = animal_table(a, done)
    summary(table, oracle_name=VARIANTS["oracle"][0])
    if len(table) > 1:
        paired(table)
    if a.fragments:
        causes_table(table)
        fragments(done)
    for split in split_settings(a) if empty else ():
        rows = [(c, r) for (c, j), r in zip(empty, runs[len(animals):], strict=True)
                if j.split == split]
        if rows:
            false_animals(a, rows, FPS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
