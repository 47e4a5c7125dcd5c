"""What the model reads at an animal's true box on the park clips, per camera condition,
animal size and company, fp32 against int8, beside the photo classified whole: the
model's share of the per-track errors, without the regions and the tracker.

    python bench/true_box_accuracy.py --model /work/models/fullset/model --seeds 20 21 \\
        --photo-stride 11
    python bench/true_box_accuracy.py --model M --compare /work/models/fullset/model

The clips are ``bench/region_accuracy.py``'s (the model's test photos, the same seed
under every variant: the same animals on the same paths; blur and JPEG on the clean
frames at its severity). Every ``--stride``-th frame, each scored animal
(``bench/_track_score.py``'s rule: median width at least 10 % of the frame, 5 frames in
view) at least half in view is cut at its true box as the agent cuts a region and read
by each model: ``--model``'s fp32 and int8 files, and ``--compare``'s primary. An
animal is "right" when most of its crops are (what a vote of true-box crops would say);
"abstained" crops read "other" or an animal below the release's animal confidence (the
tracker does not count them).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _track_score import MIN_WIDTH, share_interval
from region_accuracy import VARIANTS, release_or_say, scene

from edge_agent.runtime import ModelRuntime
from protocols import ReleaseManifest
from trainer.crops import cut_crop, square_around
from trainer.preprocess import read_image
from trainer.synth import apply_shift

U8 = npt.NDArray[np.uint8]
CONDITIONS = ["clean", "night", "ir", "rain", "blur", "jpeg"]
NEIGHBOUR_SHARE = 0.1  # of another animal's box inside the crop's square: "with company"
Reader = tuple[str, Path, ReleaseManifest]  # name, ONNX file, its release


@dataclass
class Seen:
    """One animal of one clip under one condition: its crops' readings per model."""

    seed: int
    track_id: int
    label: str
    photo: str
    width: float  # median share of the frame's width
    company: list[bool] = field(default_factory=list)  # per crop: another animal in it
    tops: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counted: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))


def readers(a: argparse.Namespace) -> list[Reader] | None:
    """The model's fp32 and int8 files (those present) and ``--compare``'s primary."""
    release = release_or_say(a.model)
    if release is None:
        return None
    manifest = release[1]
    out = [(f"{a.model.parent.name} {precision}", a.model / name, manifest)
           for precision, name in (("fp32", "model.onnx"), ("int8", "model.int8.onnx"))
           if (a.model / name).exists()]
    if a.compare is not None:
        other = release_or_say(a.compare)
        if other is None:
            return None
        out.append((f"{a.compare.parent.name} {other[1].artifact.precision}", other[0],
                    other[1]))
    return out


def _scored(s: object, frame_count: int, width: int) -> dict[int, float]:
    """Scored animals of a clip and their median widths, from the sidecar alone."""
    widths: dict[int, list[float]] = defaultdict(list)
    for k in range(frame_count):
        for o in s.objects(s.rows(k)):  # type: ignore[attr-defined]
            if o.kind == "animal":
                widths[o.track_id].append(o.box[2] / width)
    return {tid: float(np.median(w)) for tid, w in widths.items()
            if len(w) >= 5 and float(np.median(w)) >= MIN_WIDTH}


def _company(box: tuple[float, float, float, float],
             others: Sequence[tuple[float, float, float, float]], context: float) -> bool:
    x0, y0, x1, y1 = square_around(box, context)
    for ax0, ay0, ax1, ay1 in others:
        iw, ih = max(0.0, min(x1, ax1) - max(x0, ax0)), max(0.0, min(y1, ay1) - max(y0, ay0))
        if iw * ih >= NEIGHBOUR_SHARE * (ax1 - ax0) * (ay1 - ay0):
            return True
    return False


def run_job(job: tuple[int, str], a: argparse.Namespace) -> list[Seen]:
    """Every scored animal's true-box crops of clip ``seed`` under ``variant``."""
    seed, variant = job
    models = readers(a)
    assert models is not None
    settings = release_or_say(a.model)[2]  # type: ignore[index]
    _, condition, post = VARIANTS[variant]
    s = scene(a.photos, settings, a.seconds, seed, condition, True, a.cutout_cache,
              a.photo_stride)
    scored = _scored(s, s.frame_count, s.spec.width)
    actors = {act.track_id: act for act in s.actors}
    seen = {tid: Seen(seed, tid, actors[tid].label, str(actors[tid].photo), w)
            for tid, w in scored.items()}
    spec = models[0][2]
    size = (spec.input.width, spec.input.height)
    crops: list[U8] = []
    owners: list[int] = []
    for k in range(0, s.frame_count, a.stride):
        frame = s.render(k)
        image = frame.image
        if post is not None:  # as region_accuracy.frames_of degrades the clean frames
            image = apply_shift(image, post, 0.7, np.random.default_rng([seed, k]))
        boxes = {o.track_id: (o.box[0], o.box[1], o.box[0] + o.box[2], o.box[1] + o.box[3])
                 for o in frame.objects if o.kind == "animal"}
        for o in frame.objects:
            if o.track_id in seen and o.visible_fraction >= 0.5:
                box = boxes[o.track_id]
                crops.append(cut_crop(image, box, spec.crops, size))
                owners.append(o.track_id)
                others = [b for t, b in boxes.items() if t != o.track_id]
                seen[o.track_id].company.append(_company(box, others, spec.crops.context))
    for name, path, manifest in models:
        runtime = ModelRuntime(path, manifest, a.threads)
        least = float(manifest.animal_min_confidence or 0.0)
        background = set(manifest.background_labels)
        for i in range(0, len(crops), 16):
            res = runtime.classify_crops(np.stack(crops[i:i + 16]))
            for tid, top, conf in zip(owners[i:i + 16], res.tops, res.confidences,
                                      strict=True):
                label = runtime.labels[top]
                seen[tid].tops[name].append(label)
                seen[tid].counted[name].append(label not in background and conf >= least)
    return [v for v in seen.values() if v.company]


def photo_whole(animals: list[Seen], models: list[Reader], photos: Path,
                threads: int) -> dict[tuple[str, str], bool]:
    """(model, photo) -> the photo resized whole to the input reads right."""
    out: dict[tuple[str, str], bool] = {}
    unique = {an.photo: an.label for an in animals}
    for name, path, manifest in models:
        runtime = ModelRuntime(path, manifest, threads)
        for photo, label in unique.items():
            result = runtime.infer(read_image(photos / photo))
            out[(name, photo)] = runtime.labels[result.top] == label
    return out


def _share(k: int, n: int) -> str:
    if n == 0:
        return "-"
    lo, hi = share_interval(k, n)
    return f"{k / n:.1%} ({k}/{n}) [{lo:.1%}, {hi:.1%}]"


def _cells(animals: list[Seen], name: str) -> tuple[str, str, str]:
    """Crops right, crops abstained, animals right (most crops right) of ``animals``."""
    rights = [t == an.label for an in animals for t in an.tops[name]]
    counted = [c for an in animals for c in an.counted[name]]
    maj = [bool(np.mean([t == an.label for t in an.tops[name]]) > 0.5) for an in animals]
    return (_share(sum(rights), len(rights)),
            f"{1 - np.mean(counted):.1%}" if counted else "-", _share(sum(maj), len(maj)))


def _split(animals: list[Seen], name: str, company: bool) -> list[Seen]:
    """Each animal's crops with (or without) a second animal in them."""
    out = []
    for an in animals:
        keep = [i for i, c in enumerate(an.company) if c == company]
        if keep:
            part = Seen(an.seed, an.track_id, an.label, an.photo, an.width,
                        [company] * len(keep))
            part.tops[name] = [an.tops[name][i] for i in keep]
            part.counted[name] = [an.counted[name][i] for i in keep]
            out.append(part)
    return out


def report(by_variant: dict[str, list[Seen]], models: list[Reader], whole: dict[tuple[str, str],
           bool]) -> None:
    names = [m[0] for m in models]
    print("| condition | model | true-box crops right [95 %] | crops abstained | animals, "
          "most crops right [95 %] |")
    print("|---|---|---:|---:|---:|")
    for variant, animals in by_variant.items():
        for name in names:
            print(f"| {variant} | {name} | " + " | ".join(_cells(animals, name)) + " |")
    clean = by_variant.get("clean") or next(iter(by_variant.values()))
    print("\n| clean, by | model | true-box crops right | crops abstained | animals right |")
    print("|---|---|---:|---:|---:|")
    buckets = (("10-15 % wide", 0.0, 0.15), ("15-20 %", 0.15, 0.2), ("20-30 %", 0.2, 0.3),
               (">= 30 %", 0.3, 2.0))
    for name in names:
        for title, lo, hi in buckets:
            part = [an for an in clean if lo <= an.width < hi]
            print(f"| {title} | {name} | " + " | ".join(_cells(part, name)) + " |")
        for title, company in (("alone in its crop", False), ("with a second animal", True)):
            print(f"| {title} | {name} | " + " | ".join(_cells(_split(clean, name, company),
                                                                name)) + " |")
    photos = sorted({an.photo for an in clean})
    print(f"\nphoto whole (the trainer's test reading), {len(photos)} distinct photos: "
          + "; ".join(f"{name} {_share(sum(whole[(name, p)] for p in photos), len(photos))}"
                      for name in names))
    first = names[0]
    wrong = [an for an in clean if np.mean([t == an.label for t in an.tops[first]]) <= 0.5]
    print(f"\n{first}: clean animals with most true-box crops wrong ({len(wrong)} of "
          f"{len(clean)})\n\n| seed #track photo | label | width | crops right | read as | "
          "photo whole |")
    print("|---|---|---:|---:|---|---|")
    for an in wrong:
        tops = an.tops[first]
        common = max(set(tops), key=tops.count)
        print(f"| {an.seed} #{an.track_id} {an.photo} | {an.label} | {an.width:.0%} | "
              f"{sum(t == an.label for t in tops)}/{len(tops)} | {common} | "
              f"{'R' if whole[(first, an.photo)] else 'w'} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a trainer out dir")
    ap.add_argument("--compare", type=Path, default=None,
                    help="a second trainer out dir, its primary read beside")
    ap.add_argument("--photos", type=Path,
                    default=Path(__file__).resolve().parents[2] / "shared/data/cats_and_dogs")
    ap.add_argument("--seeds", type=int, nargs="+", default=[20, 21, 22, 23, 24])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--photo-stride", type=int, default=11,
                    help="clip SEED films the test photos from the SEED x N-th on "
                    "(bench/region_accuracy.py's option)")
    ap.add_argument("--variants", nargs="+", choices=CONDITIONS, default=CONDITIONS)
    ap.add_argument("--stride", type=int, default=5, help="frames between true-box crops")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cutout-cache", type=Path, default=None)
    a = ap.parse_args(argv)
    if a.stride < 1 or a.photo_stride < 0:
        print("error: --stride must be 1 or more and --photo-stride 0 or more", file=sys.stderr)
        return 2
    models = readers(a)
    if models is None:
        return 2
    jobs = [(seed, v) for v in a.variants for seed in a.seeds]
    if a.jobs <= 1:
        done = [run_job(j, a) for j in jobs]
    else:
        with ProcessPoolExecutor(a.jobs, mp_context=get_context("spawn")) as pool:
            done = list(pool.map(run_job, jobs, [a] * len(jobs)))
    by_variant: dict[str, list[Seen]] = defaultdict(list)
    for (_, variant), animals in zip(jobs, done, strict=True):
        by_variant[variant] += animals
    whole = photo_whole([an for v in by_variant.values() for an in v], models, a.photos,
                        a.threads)
    print(f"seeds {' '.join(map(str, a.seeds))}, {a.seconds:g} s clips, photo stride "
          f"{a.photo_stride}, every {a.stride}th frame\n")
    report(dict(by_variant), models, whole)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
