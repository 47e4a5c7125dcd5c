"""False animals per camera-hour before and after a camera's own mined negatives, side by
side in one run (the crops voting animal beside them: a finer measure than whole tracks).

    python bench/mined_negatives.py --model out/before --work out/mined
    python bench/mined_negatives.py --model out/before --work out/mined --mine-seconds 600 \
        --eval-seconds 600 --negatives 80

1. **Mine.** Camera A (``--camera-seed``) films park clips without animals (walkers,
   balls, leaves, cloud shadows) in every condition (day, dusk, night, IR, rain). The
   first ``--mine-seconds`` of them go through the agent's own ``RegionAnalyzer`` and
   ``NegativeMiner`` with the ``--model`` release, as a camera with ``upload_samples``
   on: every crop it would offer is kept, then ``--negatives`` of them spread evenly
   over the clip stand for what its budget (``negative_max_per_hour``) uploads over
   days. The clips hold no animal, so an operator confirms them all.
2. **Export and retrain.** A dataset as the control plane exports it: the photos' label
   folders and ``other/`` with the confirmed crops as the agent's JPEGs; the trainer
   retrains with the model's own settings (``report.json``) and its feature cache, so
   only the new crops cost backbone time. A model already in ``<work>/after`` is kept.
3. **Score both** on what neither saw: camera A's later clips (``--eval-seconds``, the
   same park, other passers-by), camera B (``--control-seed``: never mined; whether
   the change carries beyond the camera it came from), and an animal clip of the test
   photos (per-track accuracy: negatives must not cost animals).

False animals come with the exact Poisson 95 % upper bound per camera-hour, accuracies
with Clopper-Pearson intervals (``bench/region_accuracy.py``, whose clips and scoring
this reuses).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import cpu_name  # bench/ is on sys.path: scripts run from it
from _track_score import rate_upper, score_tracks, share_interval
from region_accuracy import FPS, frames_of, load_release, run_clip, scene

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.mining import NegativeMiner
from edge_agent.runtime import Inference, ModelRuntime
from protocols import NegativeSource
from trainer.synth import FrameObject, Scene, SceneSpec, Schedule

CONDITIONS = ("day", "dusk", "night", "ir", "rain")
JPEG_QUALITY = 85  # the agent's sample_jpeg_quality default


@dataclass
class Mined:
    frame: int
    condition: str
    source: NegativeSource
    jpeg: bytes


class KeepAll:
    """A sink that takes every candidate the miner offers (the budget is applied after)."""

    def __init__(self) -> None:
        self.frame, self.condition = 0, ""
        self.kept: list[Mined] = []

    def wants_negative(self, background: bool) -> bool:
        return True

    def offer_negative(self, camera_id: str, image: np.ndarray, result: Inference,
                       runtime: ModelRuntime, source: NegativeSource) -> None:
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            self.kept.append(Mined(self.frame, self.condition, source, jpeg.tobytes()))


def span(s: Scene, start: int, stop: int) -> Iterator[tuple[np.ndarray, list[FrameObject]]]:
    """Frames ``start`` to ``stop`` of a clip (only those are rendered)."""
    for k in range(start, min(stop, s.frame_count)):
        f = s.render(k)
        yield f.image, f.objects


def mine(a: argparse.Namespace, runtime: ModelRuntime, settings: dict[str, object]
         ) -> list[Mined]:
    per_mine = a.mine_seconds / len(CONDITIONS)
    per_eval = a.eval_seconds / len(CONDITIONS)
    sink, miner = KeepAll(), NegativeMiner(seed=a.camera_seed)
    for condition in CONDITIONS:
        s = distractors(a, per_mine + per_eval, a.camera_seed, condition)
        analyzer = RegionAnalyzer(CameraConfig(camera_id="A", source="bench",
                                               sample_fps=FPS), lambda *_a, **_k: None,
                                  frozenset(), 0.6)
        sink.condition = condition
        for k, (image, _objects) in enumerate(span(s, 0, round(per_mine * FPS))):
            sink.frame = k
            miner(sink, "A", analyzer, image, runtime, analyzer.analyse(image, k / FPS,
                                                                        runtime))
    return sink.kept


def spread(found: list[Mined], n: int) -> list[Mined]:
    """``n`` of the candidates, evenly over the clips (a budget spreads them over time)."""
    if len(found) <= n:
        return found
    return [found[round(i)] for i in np.linspace(0, len(found) - 1, n)]


def export(a: argparse.Namespace, picked: list[Mined]) -> Path:
    """The dataset as the control plane's export writes it: label folders and other/."""
    data: Path = a.work / "data"
    (data / "other").mkdir(parents=True, exist_ok=True)
    for label_dir in sorted(p for p in a.photos.iterdir() if p.is_dir()):
        link = data / label_dir.name
        if not link.exists():
            link.symlink_to(label_dir.resolve(), target_is_directory=True)
    for i, m in enumerate(picked):
        (data / "other" / f"sample-{i}.jpg").write_bytes(m.jpeg)
    return data


def retrain(a: argparse.Namespace, data: Path, settings: dict[str, object]) -> Path:
    out: Path = a.work / "after"
    if (out / "registration.json").is_file():
        print(f"kept the model already in {out}")
        return out
    from trainer import load_settings, run_training

    keep = ("arch", "regions", "input_size", "seed", "val_fraction", "test_fraction",
            "width_mult", "region_crops_per_image", "region_other_share",
            "region_false_animals_per_hour", "region_other_regions_per_hour",
            "region_calibration_crops", "region_eval_seconds", "shifts", "quantize",
            "feature_cache_dir", "probe_flip")
    overrides = {k: settings[k] for k in keep if k in settings}
    overrides.update(data_dir=data, out_dir=out)
    started = time.perf_counter()
    run_training(load_settings(None, **overrides), show_progress=False)
    print(f"retrained with the mined negatives in {time.perf_counter() - started:.0f} s")
    return out


@dataclass
class Score:
    false_a: int = 0  # confirmed animal tracks on camera A's later clips (all false)
    false_b: int = 0
    crops_a: int = 0  # crops classified on camera A's later clips
    animal_crops_a: int = 0  # of which voted animal (an animal label at its confidence)
    hours: float = 0.0
    control_hours: float = 0.0
    tracks: int = 0
    found: int = 0
    right: int = 0


def distractors(a: argparse.Namespace, seconds: float, seed: int, condition: str) -> Scene:
    """A clip without animals, ``--distractors-per-minute`` walkers, balls, leaves and
    cloud shadows."""
    schedule = Schedule(empty_share=1.0, animals_per_minute=0,
                        distractors_per_minute=a.distractors_per_minute)
    return Scene(SceneSpec(seconds=seconds, fps=FPS, seed=seed, schedule=schedule,
                           conditions=(condition,)))


def false_animals(frames: Iterator[tuple[np.ndarray, list[FrameObject]]], runtime: ModelRuntime
                  ) -> tuple[int, int, int]:
    """Animal tracks (every one false: no animal is in view), crops, crops voting animal."""
    analyzer = RegionAnalyzer(CameraConfig(camera_id="bench", source="bench", sample_fps=FPS),
                              lambda *_a, **_k: None, frozenset(), 0.6)
    animals: set[int] = set()
    crops = voted = 0
    least = runtime.manifest.animal_min_confidence or 0.6
    background = set(runtime.manifest.background_labels)
    for k, (image, _objects) in enumerate(frames):
        results = analyzer.analyse(image, k / FPS, runtime)
        if results is not None:
            crops += len(results.tops)
            voted += sum(runtime.labels[t] not in background and c >= least
                         for t, c in zip(results.tops, results.confidences, strict=True))
        animals |= {t.track_id for t in analyzer.tracker.tracks
                    if t.confirmed and analyzer.tracker.is_animal(t)}
    analyzer.stop()
    return len(animals), crops, voted


def score(a: argparse.Namespace, runtime: ModelRuntime, settings: dict[str, object]
          ) -> Score:
    per_mine = a.mine_seconds / len(CONDITIONS)
    per_eval = a.eval_seconds / len(CONDITIONS)
    sc = Score(hours=a.eval_seconds / 3600, control_hours=a.control_seconds / 3600)
    for i, condition in enumerate(CONDITIONS):
        s = distractors(a, per_mine + per_eval, a.camera_seed, condition)
        false, crops, voted = false_animals(span(s, round(per_mine * FPS), s.frame_count),
                                            runtime)
        sc.false_a, sc.crops_a, sc.animal_crops_a = (sc.false_a + false, sc.crops_a + crops,
                                                     sc.animal_crops_a + voted)
        b = distractors(a, a.control_seconds / len(CONDITIONS), a.control_seed + i, condition)
        sc.false_b += false_animals(span(b, 0, b.frame_count), runtime)[0]
    animals = scene(a.photos, settings, a.animal_seconds, a.animal_seed, "day", True, None)
    tracks = score_tracks(run_clip(frames_of(animals), runtime, round(30 * FPS)))
    sc.tracks, sc.found, sc.right = tracks.tracks, tracks.found, tracks.right
    return sc


def report(picked: list[Mined], found: list[Mined], before: Score, after: Score,
           a: argparse.Namespace, confidences: tuple[float, float]) -> None:
    sources = Counter(m.source for m in picked)
    print(f"\nmined on camera A (seed {a.camera_seed}), {a.mine_seconds:g} s without animals: "
          f"{len(found)} candidates, {len(picked)} confirmed and exported "
          f"({', '.join(f'{k} {v}' for k, v in sorted(sources.items()))})\n")
    print(f"| model | animal confidence | camera A later, {a.eval_seconds:g} s: false animals "
          f"| per camera-hour [95 % upper] | crops voting animal | camera B (never mined), "
          f"{a.control_seconds:g} s | per camera-hour [95 % upper] | animal tracks >= 10 % "
          "wide: right of found [95 %] |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, sc, least in (("before", before, confidences[0]),
                            ("after (+ A's negatives)", after, confidences[1])):
        low, high = share_interval(sc.right, sc.found)
        print(f"| {name} | {least:.3f} | {sc.false_a} | {sc.false_a / sc.hours:.1f} "
              f"[{rate_upper(sc.false_a, sc.hours):.1f}] | {sc.animal_crops_a} of "
              f"{sc.crops_a} ({sc.animal_crops_a / max(sc.crops_a, 1):.2%}) | {sc.false_b} | "
              f"{sc.false_b / sc.control_hours:.1f} "
              f"[{rate_upper(sc.false_b, sc.control_hours):.1f}] | "
              f"{sc.right} of {sc.found} ({sc.right / max(sc.found, 1):.1%} "
              f"[{low:.1%}, {high:.1%}]; {sc.tracks} in view) |")
    if before.false_a:
        print(f"\ncamera A false animals after / before: {after.false_a / before.false_a:.2f}")
    if before.animal_crops_a and before.crops_a and after.crops_a:
        ratio = (after.animal_crops_a / after.crops_a) / (before.animal_crops_a / before.crops_a)
        print(f"camera A crops voting animal, share after / before: {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a regions model's out dir")
    ap.add_argument("--work", type=Path, required=True,
                    help="folder for the exported dataset and the retrained model")
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--camera-seed", type=int, default=41)
    ap.add_argument("--control-seed", type=int, default=61)
    ap.add_argument("--animal-seed", type=int, default=11)
    ap.add_argument("--mine-seconds", type=float, default=300.0,
                    help="camera A's clips mined, split over 5 conditions")
    ap.add_argument("--eval-seconds", type=float, default=300.0,
                    help="camera A's later clips, split over 5 conditions")
    ap.add_argument("--control-seconds", type=float, default=150.0,
                    help="camera B's clips, split over 5 conditions")
    ap.add_argument("--animal-seconds", type=float, default=120.0)
    ap.add_argument("--distractors-per-minute", type=float, default=12.0,
                    help="walkers, balls, leaves and cloud shadows in the clips without animals")
    ap.add_argument("--negatives", type=int, default=60,
                    help="confirmed negatives exported (a few days at 6 an hour, less the "
                    "operator's rejects)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    try:
        path, manifest, settings = load_release(a.model)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {a.model}: {exc}; pass --model with a regions model's out dir",
              file=sys.stderr)
        return 2
    if "other" not in manifest.labels:
        print(f"error: {a.model} has no 'other' class: train it with --regions",
              file=sys.stderr)
        return 2
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"model {a.model} (labels {manifest.labels})")
    runtime = ModelRuntime(path, manifest, a.threads)
    found = mine(a, runtime, settings)
    picked = spread(found, a.negatives)
    after_dir = retrain(a, export(a, picked), settings)
    after_path, after_manifest, _ = load_release(after_dir)
    before = score(a, runtime, settings)
    after = score(a, ModelRuntime(after_path, after_manifest, a.threads), settings)
    report(picked, found, before, after, a, (manifest.animal_min_confidence or 0.6,
                                             after_manifest.animal_min_confidence or 0.6))
    (a.work / "result.json").write_text(json.dumps(
        {"before": before.__dict__, "after": after.__dict__, "negatives": len(picked),
         "candidates": len(found)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
