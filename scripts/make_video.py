"""Write a synthetic close-up CCTV clip (cartoon animals) with per-segment ground truth.

The clip is made by :func:`trainer.synth.closeup.make_video` (see its module for what the
clip stands for and the sidecar format); this script is its command line. For wide park
scenes with per-frame boxes and tracks, use ``scripts/park_clip.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.synth.closeup import make_video
from trainer.synth.shifts import SHIFTS

__all__ = ["clip_parser", "main", "make_video", "print_written"]


def clip_parser(description: str, seed_help: str | None = None) -> argparse.ArgumentParser:
    """The command-line options every close-up clip generator shares."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("out", type=Path, help="output .avi; the ground truth goes next to it")
    ap.add_argument("--segments", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per segment")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--seed", type=int, default=0, help=seed_help)
    ap.add_argument("--labels", default=None, help="comma list, cycled, e.g. cat,dog,dog")
    ap.add_argument("--shift", choices=SHIFTS, default=None)
    ap.add_argument("--shift-from", type=int, default=None, help="first shifted segment")
    ap.add_argument("--severity", type=float, default=1.0)
    return ap


def print_written(a: argparse.Namespace, meta: dict[str, Any]) -> None:
    segs = ", ".join(f"{s['label']}{'/' + s['shift'] if s['shift'] else ''}"
                     for s in meta["segments"])
    print(f"wrote {a.out} ({meta['frame_count']} frames, {a.width}x{a.height} @ {a.fps:g} fps)"
          f" and {a.out.with_suffix('.json')}: {segs}")


def main(argv: list[str] | None = None) -> int:
    a = clip_parser("Write a synthetic CCTV clip with ground truth.").parse_args(argv)
    labels = a.labels.split(",") if a.labels else None
    try:
        meta = make_video(a.out, a.segments, a.seconds, a.fps, (a.width, a.height), a.seed,
                          labels, a.shift, a.shift_from, a.severity)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_written(a, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
