"""A synthetic CCTV clip assembled from held-out real cat and dog photos, with ground truth.

Each segment shows one photo from the trainer's *test* split (the same split by file
hash and seed as ``parkwatch train``, so no frame was seen in training), as a fixed
camera would: the picture fills the frame and slowly pans and zooms (an animal
moving relative to the camera), the camera shakes by a pixel or two, each frame
gets fresh sensor read noise and a burnt-in timestamp. From ``shift_from_segment``
on a camera shift (night, IR, blur, rain, tilt) is applied, as in ``make_video``.

The sidecar JSON has the same format as ``make_video``'s (``segments[i].start_frame``
inclusive, ``end_frame`` exclusive, ``label``, ``shift``) plus each segment's
``photo`` (its path relative to the photo folder).

What it cannot stand for: real CCTV. The photos are framed by people, well lit and
one animal each; the motion is a pan over a still picture.
"""

from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make `scripts` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.make_video import (
    _camera_frame,
    _check_clip,
    _open_writer,
    _write_sidecar,
    clip_parser,
    print_written,
)
from scripts.synth_images import LABELS, U8
from trainer.data import IMAGE_SUFFIXES, assign_split

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cats_and_dogs"


def held_out_photos(root: Path, label: str, seed: int = 0, val_fraction: float = 0.15,
                    test_fraction: float = 0.15) -> list[Path]:
    """The photos of ``label`` that the trainer puts in its test split, in file-hash order."""
    folder = root / label
    if not folder.is_dir():
        raise ValueError(f"no folder {folder}: the photos must be in ImageFolder layout "
                         f"(root/{'|'.join(LABELS)}/*.jpg)")
    hashed = sorted(
        (hashlib.sha256(p.read_bytes()).hexdigest(), p)
        for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
    )
    return [p for sha, p in hashed
            if assign_split(sha, seed, val_fraction, test_fraction) == "test"]


def cover(photo: U8, w: int, h: int, zoom: float, pan: np.ndarray, angle: float) -> U8:
    """The photo scaled to cover a w x h frame (times ``zoom``), panned and slightly rotated."""
    ph, pw = photo.shape[:2]
    scale = max(w / pw, h / ph) * zoom
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
    m[:, 2] += np.array([w / 2, h / 2]) - np.array([pw / 2, ph / 2]) + pan
    return np.asarray(cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101), np.uint8)


def make_real_video(out_path: Path, photos_root: Path = DEFAULT_PHOTOS, n_segments: int = 6,
                    segment_seconds: float = 2.0, fps: float = 10.0,
                    size: tuple[int, int] = (320, 240), seed: int = 0,
                    labels: list[str] | None = None, shift: str | None = None,
                    shift_from_segment: int | None = None,
                    severity: float = 1.0) -> dict[str, Any]:
    """Write an MJPG ``.avi`` at ``out_path`` (size is width, height) plus a ``.json`` sidecar."""
    seg_labels = _check_clip(n_segments, segment_seconds, fps, labels, shift,
                             shift_from_segment, severity)
    pools = {lab: held_out_photos(photos_root, lab, seed) for lab in set(seg_labels)}
    for lab, pool in pools.items():
        if not pool:
            raise ValueError(f"no held-out {lab} photos under {photos_root}")
    w, h = size
    per_seg = max(1, round(segment_seconds * fps))
    shift_from = 0 if shift_from_segment is None else shift_from_segment
    out_path = Path(out_path)
    writer = _open_writer(out_path, fps, w, h)
    segments: list[dict[str, Any]] = []
    used = dict.fromkeys(pools, 0)
    try:
        for si, label in enumerate(seg_labels):
            pool = pools[label]
            path = pool[used[label] % len(pool)]  # each photo once before any repeats
            used[label] += 1
            decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if decoded is None:
                raise ValueError(f"cannot decode {path}")
            photo: U8 = np.asarray(decoded, np.uint8)
            srng = np.random.default_rng([seed, 11, si])
            start = srng.uniform(-0.06, 0.06, 2) * np.array([w, h])
            drift = srng.uniform(-0.08, 0.08, 2) * np.array([w, h])
            zoom0, angle = srng.uniform(1.0, 1.1), float(srng.normal(0, 2))
            cam_seed = int(srng.integers(2**31))
            shifted = shift is not None and si >= shift_from
            for k in range(per_seg):
                t = k / max(1, per_seg - 1)
                frame_no = si * per_seg + k
                frng = np.random.default_rng([seed, 11, si, k])
                shake = frng.normal(0, 0.6, 2)  # a pole-mounted camera is never quite still
                zoom = zoom0 * (1 + 0.08 * t) * (1 + 0.01 * math.sin(4 * t))
                frame = cover(photo, w, h, zoom, start + drift * t + shake, angle)
                writer.write(_camera_frame(frame, cam_seed, frng, shift if shifted else None,
                                           severity, frame_no / fps, seed))
            segments.append({"start_frame": si * per_seg, "end_frame": (si + 1) * per_seg,
                             "label": label, "shift": shift if shifted else None,
                             "photo": path.relative_to(photos_root).as_posix()})
    finally:
        writer.release()
    return _write_sidecar(out_path, fps, per_seg * n_segments, w, h, segments)


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
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_written(a, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
