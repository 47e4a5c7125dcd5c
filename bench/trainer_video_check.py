"""Accuracy of a trained model on the frames of a ``make_video`` clip, as an agent sees them
(``trainer.video_check``).

    python bench/trainer_video_check.py OUT_DIR clip.avi [--model model.int8.onnx]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.video_check import video_accuracy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, help="a `parkwatch train --out` folder")
    ap.add_argument("video", type=Path, help="a make_video .avi (with its .json sidecar)")
    ap.add_argument("--model", type=Path, default=None, help="ONNX file (default model.onnx)")
    a = ap.parse_args()
    print(json.dumps(video_accuracy(a.out_dir, a.video, a.model), indent=2))


if __name__ == "__main__":
    main()
