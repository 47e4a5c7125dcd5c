"""Write deterministic synthetic cat/dog images (ImageFolder) from the command line.

The drawing lives in :mod:`trainer.synth.cartoon` and the camera shifts in
:mod:`trainer.synth.shifts`; this script is their command line, and keeps the names it
always exported so ``from scripts.synth_images import ...`` goes on working.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.synth._draw import F32, FA, U8
from trainer.synth.cartoon import (
    FUR,
    LABELS,
    animal_layer,
    composite,
    generate_dataset,
    occlude,
    park_background,
    placement,
    render_animal,
    sensor,
)
from trainer.synth.shifts import SHIFTS, apply_shift

__all__ = ["F32", "FA", "FUR", "LABELS", "SHIFTS", "U8", "animal_layer", "apply_shift",
           "composite", "generate_dataset", "main", "occlude", "park_background", "placement",
           "render_animal", "sensor"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write synthetic cat/dog images (ImageFolder).")
    ap.add_argument("out", type=Path, help="output folder; gets cat/ and dog/ subfolders")
    ap.add_argument("--n-per-class", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--shift", choices=SHIFTS, default=None)
    ap.add_argument("--severity", type=float, default=1.0)
    args = ap.parse_args(argv)
    try:
        counts = generate_dataset(args.out, args.n_per_class, args.seed, args.size,
                                  args.shift, args.severity)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shift = f", shift {args.shift}@{args.severity:g}" if args.shift else ""
    for label, n in counts.items():
        print(f"wrote {n} {args.size}x{args.size} images to {args.out / label}{shift}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
