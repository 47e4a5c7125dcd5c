"""Write a close-up CCTV clip of held-out real cat and dog photos, with ground truth.

The clip is made by :func:`trainer.synth.closeup.make_real_video`: each segment films one
photo of the trainer's *test* split (same split rule and seed as ``parkwatch train``, see
:mod:`trainer.synth.photos`), so no frame was seen in training. This script is its command
line. For wide park scenes with cut-out animals, use ``scripts/park_clip.py --photos``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.make_video import clip_parser, print_written
from trainer.synth.closeup import cover, make_real_video
from trainer.synth.photos import held_out_photos

# The shared photo set sits beside the checkout (see its README); --photos overrides it.
DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"

__all__ = ["DEFAULT_PHOTOS", "cover", "held_out_photos", "main", "make_real_video"]


def main(argv: list[str] | None = None) -> int:
    ap = clip_parser("Write a CCTV-like clip of held-out real photos.",
                     seed_help="the trainer's split seed too")
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="ImageFolder root")
    a = ap.parse_args(argv)
    try:
        meta = make_real_video(a.out, a.photos, a.segments, a.seconds, a.fps,
                               (a.width, a.height), a.seed,
                               a.labels.split(",") if a.labels else None, a.shift,
                               a.shift_from, a.severity)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_written(a, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
