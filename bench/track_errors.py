"""Where the per-track errors of regions mode come from: each scored animal of the clean
park clips, the agent's track against a ladder of easier readings of the same photo.

    python bench/track_errors.py --model /work/models/fullset/model --seeds 20 21 22 23 24

Per scored animal (``bench/_track_score.py``'s rule: at least 10 % of the frame wide,
5 frames in view) the clip runs through the agent's own ``RegionAnalyzer`` as
``bench/region_accuracy.py`` runs it, and every crop the agent classified is kept with
the animal it holds most of (at least half of that animal's box inside the region).
Then the same photo is read by the same model, easiest first:

- **photo**: the whole photo resized to the input, as the trainer's test photos are;
- **cut-out, large**: its cut-out on an empty park at 30 % of the frame's width, cut as
  the agent cuts a region (no camera: resolution and matte only);
- **cut-out, its width**: the same at the animal's median width in the clip;
- **true box**: the clip's frames cut at the animal's true box (camera, neighbours);
- **agent crops**: what the agent cut and voted with; and the **track**'s final label.

Each step down that turns right into wrong names a cause: the cut-out and the park
(photo -> large), the resolution (large -> its width), the camera and the neighbours
(-> true box), the regions' boxes (-> agent crops), the tracker and the vote (-> track).
A second table prints, per wrong track, its width, crops, how many abstained or held a
second animal, how much of the animal the agent's boxes held, and its vote. Without
``--no-flip`` every crop is also read mirrored, and the vote of the mean of both
readings is printed beside (test-time flip averaging: what it would change).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _track_score import MIN_WIDTH, Run, Truth, match
from region_accuracy import FPS, frames_of, release_or_say, scene

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.boxes import Box, area, inside
from edge_agent.runtime import ModelRuntime
from protocols import CropSpec
from trainer.crops import FRAME, backdrops, cut_crop, fit_animal
from trainer.preprocess import read_image
from trainer.synth.cutout import CutoutCache
from trainer.synth.sprites import paste

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
TRUE_BOX_STRIDE = 5  # frames between true-box crops: neighbours look alike
LARGE_WIDTH = 0.30  # of the frame: the "cut-out, large" rung


@dataclass
class Crop:
    probs: F32  # the model's probabilities, as read
    flipped: F32  # ... of the crop mirrored
    cover: float  # share of the animal's box inside the region
    loose: float  # region area over the animal's box area
    group: bool  # a second animal's box at least 30 % inside the region too
    probe: bool  # cut at a resting track's last box
    width: float  # the region's width, a share of the frame's
    region: Box
    truth: Box  # the animal's visible part
    visible: float  # share of the animal in view
    at_truth: F32  # the model's probabilities of this frame cut at the true box


@dataclass
class Animal:
    label: str
    photo: str
    sha256: str
    widths: list[float] = field(default_factory=list)
    crops: list[Crop] = field(default_factory=list)
    true_box: list[F32] = field(default_factory=list)  # probabilities
    rungs: dict[str, F32] = field(default_factory=dict)  # photo, large, its width


@dataclass
class Clip:
    seed: int
    labels: list[str]
    animals: dict[int, Animal]
    track_label: dict[int, str | None]  # per scored animal: its matched track's vote, or None
    votes: dict[int, tuple[dict[str, float], dict[str, float]]]  # solo, group of that track
    least: float  # the animal confidence


def _read(runtime: ModelRuntime, crops: list[U8]) -> list[F32]:
    out: list[F32] = []
    for i in range(0, len(crops), 8):
        res = runtime.classify_crops(np.stack(crops[i:i + 8]))
        out += [np.array(p, np.float32) for p in res.probs]
    return out


def _holder(region: Box, objects: list[tuple[int, Box]]) -> tuple[int | None, float, bool]:
    """The animal whose box lies most in ``region`` (at least half; the larger of two
    whole inside), its share, and whether a second animal's box is at least 30 % inside
    too."""
    shares = sorted(((inside(b, region), area(b), tid) for tid, b in objects), reverse=True)
    if not shares or shares[0][0] < 0.5:
        return None, 0.0, False
    return shares[0][2], shares[0][0], len(shares) > 1 and shares[1][0] >= 0.3


def run_clip(seed: int, a: argparse.Namespace) -> Clip:
    release = release_or_say(a.model)
    assert release is not None
    path, manifest, settings = release
    runtime = ModelRuntime(path, manifest, a.threads)
    size = (manifest.input.width, manifest.input.height)
    s = scene(a.photos, settings, a.seconds, seed, "day", True, a.cutout_cache,
              a.photo_stride)
    camera = CameraConfig(camera_id="bench", source="bench", sample_fps=FPS)
    analyzer = RegionAnalyzer(camera, lambda *x, **kw: None, frozenset(), 0.6)
    run = Run(window_frames=10 ** 9)
    animals: dict[int, Animal] = {}
    by_id = {actor.track_id: actor for actor in s.actors}
    votes: dict[int, tuple[dict[str, float], dict[str, float]]] = {}
    true_crops: list[tuple[int, U8]] = []
    for k, (image, objects) in enumerate(frames_of(s)):
        results = analyzer.analyse(image, k / FPS, runtime)
        boxes = {o.track_id: (o.box[0], o.box[1], o.box[0] + o.box[2], o.box[1] + o.box[3])
                 for o in objects if o.kind == "animal"}
        seen = {o.track_id: o.visible_fraction for o in objects if o.kind == "animal"}
        for o in objects:
            if o.kind != "animal":
                continue
            actor = by_id[o.track_id]
            animal = animals.setdefault(o.track_id, Animal(o.label, str(actor.photo),
                                                                str(actor.photo_sha256)))
            animal.widths.append(o.box[2] / image.shape[1])
            run.truth.setdefault(o.track_id, Truth(o.label)).boxes[k] = boxes[o.track_id]
            run.truth[o.track_id].widths.append(o.box[2] / image.shape[1])
            if k % TRUE_BOX_STRIDE == 0 and o.visible_fraction >= 0.5:
                true_crops.append((o.track_id, cut_crop(image, boxes[o.track_id],
                                                        manifest.crops, size)))
        if results is not None:
            probs = [np.array(p, np.float32) for p in results.probs]
            mirrored = (_read(runtime, [np.ascontiguousarray(c[:, ::-1])
                                        for c in results.images]) if a.flip else probs)
            held = [(i, region, tid, cover, group)
                    for i, region in enumerate(analyzer.boxes)
                    for tid, cover, group in [_holder(region, list(boxes.items()))]
                    if tid is not None]
            at_truth = _read(runtime, [cut_crop(image, boxes[h[2]], manifest.crops, size)
                                       for h in held])
            for (i, region, tid, cover, group), truth in zip(held, at_truth, strict=True):
                b = boxes[tid]
                loose = ((region[2] - region[0]) * (region[3] - region[1])
                         / max((b[2] - b[0]) * (b[3] - b[1]), 1.0))
                animals[tid].crops.append(Crop(probs[i], mirrored[i], cover, loose, group,
                                               analyzer._probes[i] is not None,
                                               (region[2] - region[0]) / image.shape[1],
                                               region, b, seen[tid], truth))
        for t in analyzer.tracker.tracks:
            if t.confirmed and analyzer.tracker.is_animal(t):
                run.agent[t.track_id].boxes[k] = t.box
                run.agent[t.track_id].label = t.label
            votes[t.track_id] = (dict(t.votes.solo), dict(t.votes.group))
        run.frames += 1
    analyzer.stop()
    for (tid, _), p in zip(true_crops, _read(runtime, [c for _, c in true_crops]),
                              strict=True):
        animals[tid].true_box.append(p)
    matched, _ = match(run)
    scored = {tid for tid, an in animals.items()
              if float(np.median(an.widths)) >= MIN_WIDTH and len(run.truth[tid].boxes) >= 5}
    _rungs(runtime, a.photos, {tid: animals[tid] for tid in scored}, size, manifest.crops,
           a.cutout_cache)
    return Clip(seed, list(runtime.labels), {tid: animals[tid] for tid in scored},
                {tid: run.agent[matched[tid]].label if tid in matched else None
                 for tid in scored},
                {tid: votes.get(matched[tid], ({}, {})) for tid in scored if tid in matched},
                float(manifest.animal_min_confidence or 0.6))


def _rungs(runtime: ModelRuntime, photos: Path, animals: dict[int, Animal],
           size: tuple[int, int], spec: CropSpec, cutouts: Path | None) -> None:
    """The photo whole, its cut-out large and at its clip width (see the module doc)."""
    cache = CutoutCache(cutouts)
    crops: list[U8] = []
    for tid, an in animals.items():
        photo = read_image(photos / an.photo)
        crops.append(np.asarray(cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR),
                                np.uint8))
        cut = cache.get(photos / an.photo, an.sha256)
        for width in (LARGE_WIDTH, float(np.median(an.widths))):
            rng = np.random.default_rng(tid)
            canvas = backdrops(0)[tid % 6].copy()
            small, matte = fit_animal(cut.bgr, cut.alpha, width * FRAME[0], FRAME[1] - 2, rng)
            h, w = matte.shape
            x, y = (FRAME[0] - w) // 2, max(0, FRAME[1] - h - 20)
            paste(canvas, small, matte, x, y)
            ys, xs = np.nonzero(matte >= 0.5)
            box = (float(x + xs.min()), float(y + ys.min()), float(x + xs.max() + 1),
                   float(y + ys.max() + 1))
            crops.append(cut_crop(canvas, box, spec, size))
    probs = _read(runtime, crops)
    for i, an in enumerate(animals.values()):
        an.rungs = dict(zip(("photo", "large", "width"), probs[3 * i:3 * i + 3], strict=True))


def _vote(crops: list[Crop], labels: list[str], least: float, flip: bool,
          other: str = "other") -> str | None:
    """A confidence-weighted vote over the animal's own crops (probes and group crops
    included), an animal label below ``least`` abstaining: the tracker's rule, apart
    from its group votes."""
    tally: dict[str, float] = defaultdict(float)
    for c in crops:
        p = (c.probs + c.flipped) / 2 if flip else c.probs
        top = int(p.argmax())
        label = labels[top]
        if label == other or p[top] >= least:
            tally[label] += float(p[top])
    return max(tally, key=tally.__getitem__) if tally else None


def report(clips: list[Clip], flip: bool) -> None:
    labels = clips[0].labels
    rows = [(c, tid, an) for c in clips for tid, an in sorted(c.animals.items())]
    found = [(c, tid, an) for c, tid, an in rows if c.track_label[tid] is not None]
    print(f"{len(rows)} scored animals in {len(clips)} clean clips, {len(found)} found\n")

    def right(p: F32, label: str) -> bool:
        return labels[int(p.argmax())] == label

    def share(xs: list[bool]) -> str:
        return f"{sum(xs)}/{len(xs)} ({np.mean(xs):.1%})" if xs else "-"

    print("| reading (found animals) | right | of the wrong tracks, right here |")
    print("|---|---:|---:|")
    wrong = [(c, tid, an) for c, tid, an in found if c.track_label[tid] != an.label]
    for rung in ("photo", "large", "width"):
        print(f"| {rung} | {share([right(an.rungs[rung], an.label) for _, _, an in found])} | "
              f"{share([right(an.rungs[rung], an.label) for _, _, an in wrong])} |")
    for name, get in (("true box (crop majority)", lambda an: an.true_box),
                      ("agent crops (crop majority)", lambda an: [c.probs for c in an.crops])):
        maj = [bool(np.mean([right(p, an.label) for p in get(an)]) > 0.5) if get(an) else False
               for _, _, an in found]
        wmaj = [bool(np.mean([right(p, an.label) for p in get(an)]) > 0.5) if get(an) else False
                for _, _, an in wrong]
        print(f"| {name} | {share(maj)} | {share(wmaj)} |")
    for name, fl in (("vote of its crops", False), ("vote of its crops, flip-averaged", True)):
        if fl and not flip:
            continue
        v = [_vote(an.crops, labels, c.least, fl) == an.label for c, _, an in found]
        wv = [_vote(an.crops, labels, c.least, fl) == an.label for c, _, an in wrong]
        print(f"| {name} | {share(v)} | {share(wv)} |")
    print(f"| track (the agent) | {share([c.track_label[t] == an.label for c, t, an in found])}"
          f" | 0/{len(wrong)} |")
    crops_all = [(an, cr) for _, _, an in found for cr in an.crops]
    tb_all = [(an, p) for _, _, an in found for p in an.true_box]
    print(f"\ncrops right: true box {share([right(p, an.label) for an, p in tb_all])}, the "
          f"agent's frames at the true box "
          f"{share([right(cr.at_truth, an.label) for an, cr in crops_all])}, agent "
          f"{share([right(cr.probs, an.label) for an, cr in crops_all])}"
          + (f", agent flip-averaged "
             f"{share([right(cr.probs + cr.flipped, an.label) for an, cr in crops_all])}"
             if flip else ""))
    by_width: dict[str, list[bool]] = defaultdict(list)
    for c, tid, an in found:
        w = float(np.median(an.widths))
        key = ("10-15 %" if w < 0.15 else "15-20 %" if w < 0.2 else "20-30 %" if w < 0.3
               else ">= 30 %")
        by_width[key].append(c.track_label[tid] == an.label)
    print("tracks right by median width: " + ", ".join(
        f"{k} {share(v)}" for k, v in sorted(by_width.items())))
    print("\n| wrong track | label -> track | width | crops (abstained, group, probes) | "
          "agent crops right | mean cover / loose | true-box crops right | photo / large / "
          "width | vote solo / group |")
    print("|---|---|---:|---|---:|---:|---:|---|---|")
    for c, tid, an in wrong:
        n = len(an.crops)
        abst = sum(1 for cr in an.crops if labels[int(cr.probs.argmax())] != "other"
                   and cr.probs.max() < c.least)
        solo, group = c.votes.get(tid, ({}, {}))
        fmt = ", ".join
        print(f"| seed {c.seed} #{tid} {an.photo} | {an.label} -> {c.track_label[tid]} | "
              f"{np.median(an.widths):.0%} | {n} ({abst}, {sum(cr.group for cr in an.crops)}, "
              f"{sum(cr.probe for cr in an.crops)}) | "
              f"{share([right(cr.probs, an.label) for cr in an.crops])} | "
              f"{np.mean([cr.cover for cr in an.crops]) if n else 0:.2f} / "
              f"{np.mean([cr.loose for cr in an.crops]) if n else 0:.2f} | "
              f"{share([right(p, an.label) for p in an.true_box])} | "
              + " / ".join("R" if right(an.rungs[r], an.label) else "w"
                           for r in ("photo", "large", "width"))
              + f" | {fmt(f'{k} {v:.1f}' for k, v in solo.items())} / "
              f"{fmt(f'{k} {v:.1f}' for k, v in group.items())} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[20, 21, 22, 23, 24])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cutout-cache", type=Path, default=None)
    ap.add_argument("--photo-stride", type=int, default=0,
                    help="clip SEED films the test photos from the SEED x N-th on "
                    "(bench/region_accuracy.py's option)")
    ap.add_argument("--no-flip", dest="flip", action="store_false")
    ap.add_argument("--save", type=Path, default=None,
                    help="pickle every clip's animals and crops here, to look at again")
    a = ap.parse_args(argv)
    if release_or_say(a.model) is None:
        return 2
    if a.jobs <= 1:
        clips = [run_clip(s, a) for s in a.seeds]
    else:
        with ProcessPoolExecutor(a.jobs, mp_context=get_context("spawn")) as pool:
            clips = list(pool.map(run_clip, a.seeds, [a] * len(a.seeds)))
    if a.save is not None:
        a.save.write_bytes(pickle.dumps(clips))
    report(clips, a.flip)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
