"""Write a wide park-camera clip (MJPG .avi) and its ground truth (.json sidecar).

Cartoon animals by default; ``--photos`` films cut-outs of the photos of one split of
the trainer's (the test split by default: photos no model trained on). See
docs/scenes.md for what the clips stand for and the sidecar format.

    python scripts/park_clip.py out/park.avi --seconds 120 --conditions day,dusk,night
    python scripts/park_clip.py out/real.avi --photos ../shared/data/cats_and_dogs
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.synth import PhotoPool, SceneSpec, SceneTruth, Schedule, write_clip

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "parkwatch" / "cutouts"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="Write a park-camera clip with ground truth.")
    ap.add_argument("out", type=Path, help="output .avi; the sidecar .json goes next to it")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--seed", type=int, default=0, help="the clip's seed (not the split's)")
    ap.add_argument("--conditions", default="day",
                    help="comma list, equal consecutive spans, e.g. day,dusk,night")
    ap.add_argument("--severity", type=float, default=0.8, help="of non-day conditions, 0-1")
    ap.add_argument("--empty-share", type=float, default=0.5,
                    help="share of the clip with no animal in view")
    ap.add_argument("--animals-per-minute", type=float, default=3.0)
    ap.add_argument("--distractors-per-minute", type=float, default=2.0)
    ap.add_argument("--max-group", type=int, default=3, help="most animals in view together")
    ap.add_argument("--labels", default="cat,dog", help="animal classes to draw from")
    ap.add_argument("--photos", type=Path, nargs="?", const=DEFAULT_PHOTOS, default=None,
                    help=f"film cut-outs of photos in this ImageFolder (default {DEFAULT_PHOTOS})")
    ap.add_argument("--split", choices=("train", "val", "test"), default="test",
                    help="which of the trainer's splits the photos come from")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--test-fraction", type=float, default=0.15)
    ap.add_argument("--cutout-cache", type=Path, default=None,
                    help=f"GrabCut results by photo hash (default {_cache_dir()})")
    ap.add_argument("--no-noise", action="store_true", help="no sensor noise")
    ap.add_argument("--no-shake", action="store_true", help="a perfectly still camera")
    return ap


def spec_from(a: argparse.Namespace) -> SceneSpec:
    """The clip the options describe; ValueError (one line) on bad options."""
    try:
        schedule = Schedule(empty_share=a.empty_share, animals_per_minute=a.animals_per_minute,
                            distractors_per_minute=a.distractors_per_minute,
                            max_group=a.max_group)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None
    pool = None
    if a.photos is not None:
        if not a.photos.is_dir():
            raise ValueError(f"photo folder {a.photos} does not exist; pass --photos DIR with "
                             "an ImageFolder root (DIR/cat/*.jpg, DIR/dog/*.jpg)")
        pool = PhotoPool(a.photos, a.split, a.split_seed, a.val_fraction, a.test_fraction)
    return SceneSpec(
        width=a.width, height=a.height, fps=a.fps, seconds=a.seconds, seed=a.seed,
        schedule=schedule, conditions=tuple(c.strip() for c in a.conditions.split(",")),
        severity=a.severity, labels=tuple(x.strip() for x in a.labels.split(",")),
        photos=pool, cutout_cache=a.cutout_cache or _cache_dir(), noise=not a.no_noise,
        shake=not a.no_shake)


def summary(out: Path, truth: SceneTruth) -> str:
    animals = Counter(t.label for t in truth.tracks if t.kind == "animal")
    kinds = Counter(t.label for t in truth.tracks if t.kind == "distractor")
    conds = ">".join(s.condition for s in truth.conditions)
    per_class = ", ".join(f"{n} {label}" for label, n in sorted(animals.items())) or "none"
    others = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    return (f"wrote {out} ({truth.frame_count} frames, {truth.width}x{truth.height} @ "
            f"{truth.fps:g} fps, {conds}) and {out.with_suffix('.json')}: animals {per_class};"
            f" distractors {others}; {truth.empty_share():.0%} of frames without an animal")


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        truth = write_clip(a.out, spec_from(a))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(a.out, truth))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
