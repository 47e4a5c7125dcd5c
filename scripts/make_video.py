"""Synthetic CCTV clip with per-frame ground truth, built from the image generator.

A fixed camera watches one park scene; each segment shows one animal (drawn by the same
code as `synth_images.render_animal`, so a classifier trained on those images applies)
filling most of the frame, drifting, bobbing and zooming slightly, with fresh sensor noise
per frame and a burnt-in timestamp. From `shift_from_segment` on, a camera shift (e.g.
day -> night) is applied, which is what the drift detector is meant to notice.

The sidecar JSON has `segments[i].start_frame` inclusive and `end_frame` exclusive.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a file: make `scripts` importable from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.synth_images import (
    LABELS,
    SHIFTS,
    U8,
    animal_layer,
    apply_shift,
    composite,
    occlude,
    park_background,
    placement,
    sensor,
)

_EPOCH = dt.datetime(2024, 6, 1, 7, 0, 0)


def _overlay(frame: U8, text: str) -> None:
    """CCTV-style burnt-in text: white with a dark outline, top-left."""
    scale, org = frame.shape[0] / 400, (6, int(frame.shape[0] / 22) + 6)
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):  # outline by offsets: same glyph widths
        cv2.putText(frame, text, (org[0] + dx, org[1] + dy), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def _segment_labels(n_segments: int, labels: list[str] | None) -> list[str]:
    if labels is not None and not labels:
        raise ValueError("labels must not be empty; pass None to alternate cat/dog")
    seq = list(labels) if labels else list(LABELS)
    for lab in seq:
        if lab not in LABELS:
            raise ValueError(f"unknown label {lab!r}; expected one of {', '.join(LABELS)}")
    return [seq[i % len(seq)] for i in range(n_segments)]  # cycle: ["dog"] means all dogs


def _check_clip(n_segments: int, segment_seconds: float, fps: float, labels: list[str] | None,
                shift: str | None, shift_from_segment: int | None, severity: float) -> list[str]:
    """Validate a clip's arguments (shared with ``real_video``); return the segment labels."""
    if n_segments < 1 or segment_seconds <= 0 or fps <= 0:
        raise ValueError("n_segments, segment_seconds and fps must be positive")
    seg_labels = _segment_labels(n_segments, labels)
    if shift is not None and shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {', '.join(SHIFTS)}")
    if shift_from_segment is not None and shift is None:
        raise ValueError("shift_from_segment needs a shift")
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return seg_labels


def _open_writer(out_path: Path, fps: float, w: int, h: int) -> cv2.VideoWriter:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter could not open {out_path} for MJPG at {w}x{h}; "
                           "use an .avi path in a writable folder")
    return writer


def _camera_frame(frame: U8, cam_seed: int, frng: np.random.Generator, shift: str | None,
                  severity: float, seconds: float, seed: int) -> U8:
    """What the camera adds to a scene: its settings (fixed per segment), fresh read noise,
    the shift, and the burnt-in timestamp."""
    frame = sensor(frame, np.random.default_rng(cam_seed), False, noise_rng=frng)
    if shift is not None:
        frame = apply_shift(frame, shift, severity, frng)
    stamp = _EPOCH + dt.timedelta(seconds=seconds)
    _overlay(frame, f"CAM-{seed % 100:02d}  {stamp:%Y-%m-%d %H:%M:%S}")
    return frame


def _write_sidecar(out_path: Path, fps: float, frame_count: int, w: int, h: int,
                   segments: list[dict[str, Any]]) -> dict[str, Any]:
    meta: dict[str, Any] = {"fps": fps, "frame_count": frame_count, "width": w, "height": h,
                            "segments": segments}
    out_path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def make_video(out_path: Path, n_segments: int = 6, segment_seconds: float = 2.0,
               fps: float = 10.0, size: tuple[int, int] = (320, 240), seed: int = 0,
               labels: list[str] | None = None, shift: str | None = None,
               shift_from_segment: int | None = None, severity: float = 1.0) -> dict[str, Any]:
    """Write an MJPG `.avi` at `out_path` (size is width, height) plus a `.json` sidecar."""
    seg_labels = _check_clip(n_segments, segment_seconds, fps, labels, shift,
                             shift_from_segment, severity)
    w, h = size
    per_seg = max(1, round(segment_seconds * fps))
    shift_from = 0 if shift_from_segment is None else shift_from_segment

    out_path = Path(out_path)
    writer = _open_writer(out_path, fps, w, h)
    rng = np.random.default_rng([seed, 7])
    scene = park_background(rng, h, w)  # fixed camera: one scene for the whole clip
    segments: list[dict[str, Any]] = []
    try:
        for si, label in enumerate(seg_labels):
            srng = np.random.default_rng([seed, 7, si])
            # Same animal-to-frame scale as the training images (the drawn animal fills most
            # of it); the classifier squashes the whole frame to a square, so the layer is
            # pre-stretched by w/h to keep the proportions the model was trained on.
            side = int(min(w, h) * 0.95)
            layer, alpha = animal_layer(label, srng, side)
            # Per-segment motion: a slow drift across the frame, a bob and a slight zoom.
            flip = srng.random() < 0.5
            rot = float(np.clip(srng.normal(0, 8), -15, 15))
            start = np.array([w / 2, h / 2]) + srng.uniform(-0.1, 0.1, 2) * min(w, h)
            drift = srng.uniform(-0.12, 0.12, 2) * min(w, h)
            base_scale, phase = srng.uniform(0.95, 1.1), srng.uniform(0, 2 * math.pi)
            occ_seed, cam_seed = (int(v) for v in srng.integers(2**31, size=2))
            shifted = shift is not None and si >= shift_from
            for k in range(per_seg):
                t = k / max(1, per_seg - 1)
                frame_no = si * per_seg + k
                scale = base_scale * (1 + 0.05 * t)
                centre = start + drift * t + np.array([0, 0.02 * h * math.sin(phase + 6 * t)])
                m = placement(side, rot, scale, flip, centre, stretch_x=w / h)
                frame = composite(scene, layer, alpha, m)
                # Same occluders all segment long (a fence does not jump between frames).
                frame = occlude(frame, np.random.default_rng(occ_seed))
                frng = np.random.default_rng([seed, 7, si, k])
                # Camera settings fixed per segment, read noise fresh per frame; no JPEG pass
                # here because the MJPG encoder compresses anyway.
                writer.write(_camera_frame(frame, cam_seed, frng, shift if shifted else None,
                                           severity, frame_no / fps, seed))
            segments.append({"start_frame": si * per_seg, "end_frame": (si + 1) * per_seg,
                             "label": label, "shift": shift if shifted else None})
    finally:
        writer.release()
    return _write_sidecar(out_path, fps, per_seg * n_segments, w, h, segments)


def clip_parser(description: str, seed_help: str | None = None) -> argparse.ArgumentParser:
    """The command-line options every clip generator shares (``make_video``'s arguments)."""
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
    meta = make_video(a.out, a.segments, a.seconds, a.fps, (a.width, a.height), a.seed,
                      labels, a.shift, a.shift_from, a.severity)
    print_written(a, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
