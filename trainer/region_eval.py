"""A regions-mode model judged the way the agent uses it: per crop, on park clips.

``calibrate`` picks the release's ``animal_min_confidence`` for a number of false
animals per camera-hour: the lowest top-class confidence at which at most that number over
the non-animal regions a camera sees an hour of thousands of held-out "other" crops
(``calibration_crops``: parks no training or validation crop came from) still read as an
animal (an animal label at or above it); the validation crops say what it keeps of the
animals. ``clip_crops`` films the test photos'
cut-outs into park clips (``trainer.synth``: five conditions, distractors, long empty
stretches) and cuts every visible animal (at least half visible) and every distractor
at its true box the way the agent cuts a region, plus one box of the empty park per
sampled frame; ``clip_report`` scores them: accuracy by animal width (the fleet's region
width bins) and per condition, animals kept at the calibrated confidence, and the share
of non-animal crops that would count as an animal.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from protocols import CropSpec, InputSpec
from protocols.messages import REGION_WIDTH_EDGES

from .calibrate import softmax
from .crops import FRAME, SCENE_CONDITIONS, OtherSource, cut_crop, square_around
from .inference import OnnxModel
from .preprocess import normalize
from .synth import PhotoPool, Scene, SceneSpec, Schedule

F32 = npt.NDArray[np.float32]
Probs = npt.NDArray[np.floating[Any]]
Flags = npt.NDArray[np.bool_]
SAMPLE_SECONDS = 1.0  # one analysed frame per second of clip: neighbours look alike
MIN_VISIBLE = 0.5
MAX_CONFIDENCE = 0.99  # an animal confidence above it would drop nearly every animal too
# Added to the seed: the calibration's parks (training's "other" crops film ``seed``, the
# validation crops ``seed + 7919``).
CALIBRATION_SEED = 104729
CALIBRATION_PARKS = 8  # backdrops and distractor paths
CROPS_PER_FRAME = 6  # a frame's distractors, the rest anywhere: one render, several crops


def default_cutout_cache() -> Path:
    """Where ``scripts/park_clip.py`` keeps cut-outs too (GrabCut once per photo)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "parkwatch" / "cutouts"


def animal_votes(probs: Probs, animal: Flags) -> tuple[F32, Flags]:
    """Each crop's top confidence and whether its top label is an animal label."""
    top = probs.argmax(axis=1)
    return probs.max(axis=1).astype(np.float32), animal[top]


def animal_flags(n_labels: int, background: Sequence[int]) -> Flags:
    """Per label index: is it an animal (not one of ``background``)?"""
    animal = np.ones(n_labels, bool)
    animal[list(background)] = False
    return animal


def threshold_for(scores: F32, share: float) -> float:
    """The lowest confidence at which at most ``share`` of ``scores`` (each crop's
    confidence as an animal, 0 where its top label is no animal) reach it, capped at
    ``MAX_CONFIDENCE``: just above the (n x share + 1)-th highest score."""
    ranked = np.sort(np.asarray(scores, np.float32))[::-1]
    allowed = int(np.floor(share * len(ranked) + 1e-9))
    if len(ranked) <= allowed or ranked[allowed] <= 0:  # too few read as an animal to bind
        return 0.0
    threshold = float(np.nextafter(ranked[allowed], np.float32(1.0)))
    return min(threshold, MAX_CONFIDENCE)


def calibrate(val_probs: Probs, val_y: npt.NDArray[np.int64], other_probs: Probs,
              background: Sequence[int], per_hour: float, regions_per_hour: float
              ) -> tuple[float, dict[str, float]]:
    """The animal confidence for ``per_hour`` false animals a camera-hour, and what it
    does on the validation crops.

    A camera sees ``regions_per_hour`` non-animal regions an hour; each is a false animal
    when its crops read as an animal, so at most ``per_hour / regions_per_hour`` of the
    held-out "other" crops (``other_probs``) may reach the confidence. With fewer crops
    than ``regions_per_hour / per_hour`` the target is not resolved: the confidence is
    just above the highest of them (``resolved`` 0).
    """
    animal = animal_flags(val_probs.shape[1], background)
    share = per_hour / regions_per_hour
    other_conf, other_animal = animal_votes(other_probs, animal)
    threshold = threshold_for(np.where(other_animal, other_conf, 0.0), share)
    other_false = other_animal & (other_conf >= threshold)
    conf, says_animal = animal_votes(val_probs, animal)
    negative = ~animal[val_y]
    kept = ~negative & says_animal & (conf >= threshold)
    right = kept & (val_probs.argmax(axis=1) == val_y)
    animals = max(int((~negative).sum()), 1)
    return threshold, {
        "animal_min_confidence": threshold,
        "target_false_animals_per_hour": per_hour,
        "other_regions_per_hour": regions_per_hour,
        "heldout_other_crops": len(other_probs),
        "resolved": float(len(other_probs) * share >= 1),
        "heldout_false_animal_rate": float(other_false.mean()) if len(other_false) else 0.0,
        "expected_false_animals_per_hour": float(other_false.mean() * regions_per_hour)
        if len(other_false) else 0.0,
        "val_other_crops": int(negative.sum()),
        "val_false_animal_rate": float((negative & says_animal & (conf >= threshold)).sum()
                                       / max(int(negative.sum()), 1)),
        "val_animal_kept": float(kept.sum() / animals),
        "val_animal_kept_right": float(right.sum() / animals),
    }


def calibration_crops(seed: int, count: int, spec: InputSpec, crop_spec: CropSpec
                      ) -> list[npt.NDArray[np.uint8]]:
    """``count`` held-out "other" crops: ``CROPS_PER_FRAME`` of each of frames spread over
    ``CALIBRATION_PARKS`` clips without animals (``trainer.crops.OtherSource``: walkers,
    balls, leaves, cloud shadows, lawn, through day, dusk, night, IR and rain), parks that
    neither the training crops (``seed``) nor the validation crops saw."""
    size = (spec.width, spec.height)
    out: list[npt.NDArray[np.uint8]] = []
    for park in range(CALIBRATION_PARKS):
        want = (count * (park + 1)) // CALIBRATION_PARKS - len(out)
        source = OtherSource(seed + CALIBRATION_SEED + park)
        rng = np.random.default_rng([seed, CALIBRATION_SEED, park])
        frames = -(-want // CROPS_PER_FRAME)
        crops: list[npt.NDArray[np.uint8]] = []
        for k in np.linspace(0, source.scene.frame_count - 1, frames).round().astype(int):
            crops += source.frame_crops(int(k), crop_spec, size, rng, CROPS_PER_FRAME)
        out += crops[:want]
    return out


@dataclass(frozen=True)
class ClipCrops:
    images: list[npt.NDArray[np.uint8]]  # BGR at the input size
    labels: list[str]  # "cat", "dog"... or a distractor kind, or "lawn"
    animal: list[bool]
    widths: list[float]  # the true box's width as a share of the frame's
    conditions: list[str]


def clip_crops(photos_root: Path, spec: InputSpec, crop_spec: CropSpec, seconds: float,
               seed: int, val_fraction: float, test_fraction: float,
               cutout_cache: Path | None = None) -> ClipCrops:
    """Crops of a park clip of the test photos (``seconds`` per condition)."""
    scene = Scene(SceneSpec(
        width=FRAME[0], height=FRAME[1], seconds=seconds * len(SCENE_CONDITIONS), seed=seed,
        conditions=SCENE_CONDITIONS, schedule=Schedule(distractors_per_minute=3),
        photos=PhotoPool(photos_root, "test", seed, val_fraction, test_fraction),
        cutout_cache=cutout_cache or default_cutout_cache()))
    rng = np.random.default_rng([seed, 31])
    out = ClipCrops([], [], [], [], [])
    size = (spec.width, spec.height)
    stride = max(1, round(SAMPLE_SECONDS * scene.spec.fps))
    for k in range(0, scene.frame_count, stride):
        frame = scene.render(k)
        boxes: list[tuple[str, bool, tuple[float, float, float, float]]] = [
            (o.label, o.kind == "animal", o.box) for o in frame.objects
            if o.visible_fraction >= MIN_VISIBLE]
        w = FRAME[0] * rng.uniform(0.05, 0.4)
        x, y = rng.uniform(0, FRAME[0] - w), rng.uniform(FRAME[1] * 0.3, FRAME[1] - w * 0.8)
        boxes.append(("lawn", False, (x, y, w, w * 0.8)))
        animals = [b for _, animal, b in boxes if animal]
        for label, animal, (bx, by, bw, bh) in boxes:
            # A crop of "no animal" that shows much of an animal (a walker beside a dog,
            # a cloud shadow over it) is neither: left out.
            if not animal and any(_shows(crop_spec, (bx, by, bw, bh), a) for a in animals):
                continue
            out.images.append(cut_crop(frame.image, (bx, by, bx + bw, by + bh), crop_spec, size))
            out.labels.append(label)
            out.animal.append(animal)
            out.widths.append(bw / FRAME[0])
            out.conditions.append(frame.condition)
    return out


def _shows(crop_spec: CropSpec, box: tuple[float, float, float, float],
           animal: tuple[float, float, float, float]) -> bool:
    """The crop of ``box`` holds at least a tenth of ``animal``'s box (both x, y, w, h)."""
    x0, y0, x1, y1 = square_around((box[0], box[1], box[0] + box[2], box[1] + box[3]),
                                   crop_spec.context)
    ax, ay, aw, ah = animal
    iw = max(0.0, min(x1, ax + aw) - max(x0, ax))
    ih = max(0.0, min(y1, ay + ah) - max(y0, ay))
    return iw * ih >= 0.1 * aw * ah


def predict_crops(model: OnnxModel, crops: Sequence[npt.NDArray[np.uint8]], spec: InputSpec,
                  batch: int = 32) -> F32:
    """Logits of BGR crops at the input size."""
    import cv2

    logits: list[F32] = []
    for i in range(0, len(crops), batch):
        chunk = [cv2.cvtColor(c, cv2.COLOR_BGR2RGB) if spec.color_order == "RGB" else c
                 for c in crops[i:i + batch]]
        out, _ = model.run(np.stack([normalize(c, spec) for c in chunk]))
        logits.append(out)
    return np.concatenate(logits) if logits else np.zeros((0, 0), np.float32)


def _bucket(width: float) -> str:
    for lo, hi in itertools.pairwise(REGION_WIDTH_EDGES):
        if width < hi:
            return f"{lo:.2f}-{hi:.2f}"
    return f"{REGION_WIDTH_EDGES[-2]:.2f}-1.00"


def clip_report(crops: ClipCrops, logits: F32, labels: Sequence[str], background: Sequence[str],
                temperature: float, min_confidence: float) -> dict[str, Any]:
    """Accuracy by animal width and condition, and the false-animal rate per crop."""
    probs = softmax(logits, temperature)
    is_animal = np.array([lb not in background for lb in labels])
    conf, says_animal = animal_votes(probs, is_animal)
    counted = says_animal & (conf >= min_confidence)
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    by_size: dict[str, list[bool]] = defaultdict(list)
    by_condition: dict[str, list[bool]] = defaultdict(list)
    false_by_kind: dict[str, list[bool]] = defaultdict(list)
    kept = []
    for i, animal in enumerate(crops.animal):
        if animal:
            right = predicted[i] == crops.labels[i]
            by_size[_bucket(crops.widths[i])].append(right)
            by_condition[crops.conditions[i]].append(right)
            kept.append(bool(counted[i]) and right)
        else:
            false_by_kind[crops.labels[i]].append(bool(counted[i]))

    def share(xs: Sequence[bool]) -> dict[str, float]:
        return {"accuracy": float(np.mean(xs)) if xs else 0.0, "samples": len(xs)}

    negatives = [v for xs in false_by_kind.values() for v in xs]
    return {
        "animal_crops": len(kept),
        "other_crops": len(negatives),
        "accuracy": float(np.mean([v for xs in by_size.values() for v in xs])) if kept else 0.0,
        "counted_right": float(np.mean(kept)) if kept else 0.0,
        "by_width": {k: share(v) for k, v in sorted(by_size.items())},
        "by_condition": {c: share(by_condition[c]) for c in SCENE_CONDITIONS
                         if c in by_condition},
        "false_animal_rate": float(np.mean(negatives)) if negatives else 0.0,
        "false_animal_by_kind": {k: {"rate": float(np.mean(v)), "samples": len(v)}
                                 for k, v in sorted(false_by_kind.items())},
    }


__all__ = ["ClipCrops", "animal_flags", "animal_votes", "calibrate", "calibration_crops",
           "clip_crops", "clip_report", "default_cutout_cache", "predict_crops",
           "threshold_for"]
