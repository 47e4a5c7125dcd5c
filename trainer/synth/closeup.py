"""Close-up clips: one animal filling the frame per segment, with per-segment ground truth.

Two sources. ``make_video`` draws a cartoon animal (the same code as
:func:`trainer.synth.cartoon.render_animal`, so a classifier trained on those images
applies) drifting, bobbing and zooming slightly over one park scene. ``make_real_video``
films held-out real photos (the trainer's *test* split) the way a fixed camera would: the
picture fills the frame and slowly pans and zooms, the camera shakes by a pixel or two.
Both add fresh sensor noise per frame and a burnt-in timestamp, and from
``shift_from_segment`` on a camera shift (e.g. day -> night).

The sidecar JSON has ``segments[i].start_frame`` inclusive and ``end_frame`` exclusive,
``label``, ``shift`` and, for photos, ``photo`` (relative to the photo folder).

What they cannot stand for: a park camera's wide shot (see :mod:`trainer.synth.scenes`).
The photos are framed by people, well lit and one animal each; the motion is a pan.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ._draw import U8
from .cartoon import LABELS, animal_layer, composite, occlude, park_background, placement, sensor
from .photos import held_out_photos
from .shifts import SHIFTS, apply_shift
from .video import EPOCH, burn_in, open_writer, stamp_text


def _segment_labels(n_segments: int, labels: list[str] | None) -> list[str]:
    if labels is not None and not labels:
        raise ValueError("labels must not be empty; pass None to alternate cat/dog")
    seq = list(labels) if labels else list(LABELS)
    for lab in seq:
        if lab not in LABELS:
            raise ValueError(f"unknown label {lab!r}; expected one of {', '.join(LABELS)}")
    return [seq[i % len(seq)] for i in range(n_segments)]  # cycle: ["dog"] means all dogs


def check_clip(n_segments: int, segment_seconds: float, fps: float, labels: list[str] | None,
               shift: str | None, shift_from_segment: int | None, severity: float) -> list[str]:
    """Validate a close-up clip's arguments; return the segment labels."""
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


def camera_frame(frame: U8, cam_seed: int, frng: np.random.Generator, shift: str | None,
                 severity: float, seconds: float, seed: int) -> U8:
    """What the camera adds to a scene: its settings (fixed per segment), fresh read noise,
    the shift, and the burnt-in timestamp."""
    frame = sensor(frame, np.random.default_rng(cam_seed), False, noise_rng=frng)
    if shift is not None:
        frame = apply_shift(frame, shift, severity, frng)
    burn_in(frame, stamp_text(f"CAM-{seed % 100:02d}", EPOCH, seconds))
    return frame


def write_sidecar(out_path: Path, fps: float, frame_count: int, w: int, h: int,
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
    seg_labels = check_clip(n_segments, segment_seconds, fps, labels, shift,
                            shift_from_segment, severity)
    w, h = size
    per_seg = max(1, round(segment_seconds * fps))
    shift_from = 0 if shift_from_segment is None else shift_from_segment

    out_path = Path(out_path)
    writer = open_writer(out_path, fps, w, h)
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
                writer.write(camera_frame(frame, cam_seed, frng, shift if shifted else None,
                                          severity, frame_no / fps, seed))
            segments.append({"start_frame": si * per_seg, "end_frame": (si + 1) * per_seg,
                             "label": label, "shift": shift if shifted else None})
    finally:
        writer.release()
    return write_sidecar(out_path, fps, per_seg * n_segments, w, h, segments)


def cover(photo: U8, w: int, h: int, zoom: float, pan: np.ndarray, angle: float) -> U8:
    """The photo scaled to cover a w x h frame (times ``zoom``), panned and slightly rotated."""
    ph, pw = photo.shape[:2]
    scale = max(w / pw, h / ph) * zoom
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, scale)
    m[:, 2] += np.array([w / 2, h / 2]) - np.array([pw / 2, ph / 2]) + pan
    return np.asarray(cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REFLECT_101), np.uint8)


def _read_photo(path: Path) -> U8:
    decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError(f"cannot decode {path}")
    return np.asarray(decoded, np.uint8)


def make_real_video(out_path: Path, photos_root: Path, n_segments: int = 6,
                    segment_seconds: float = 2.0, fps: float = 10.0,
                    size: tuple[int, int] = (320, 240), seed: int = 0,
                    labels: list[str] | None = None, shift: str | None = None,
                    shift_from_segment: int | None = None,
                    severity: float = 1.0) -> dict[str, Any]:
    """Write an MJPG ``.avi`` of held-out photos (``seed`` is the split seed too) + sidecar."""
    seg_labels = check_clip(n_segments, segment_seconds, fps, labels, shift,
                            shift_from_segment, severity)
    pools = {lab: held_out_photos(photos_root, lab, seed) for lab in set(seg_labels)}
    for lab, pool in pools.items():
        if not pool:
            raise ValueError(f"no held-out {lab} photos under {photos_root}")
    w, h = size
    per_seg = max(1, round(segment_seconds * fps))
    shift_from = 0 if shift_from_segment is None else shift_from_segment
    out_path = Path(out_path)
    writer = open_writer(out_path, fps, w, h)
    segments: list[dict[str, Any]] = []
    used = dict.fromkeys(pools, 0)
    try:
        for si, label in enumerate(seg_labels):
            pool = pools[label]
            path = pool[used[label] % len(pool)]  # each photo once before any repeats
            used[label] += 1
            photo = _read_photo(path)
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
                writer.write(camera_frame(frame, cam_seed, frng, shift if shifted else None,
                                          severity, frame_no / fps, seed))
            segments.append({"start_frame": si * per_seg, "end_frame": (si + 1) * per_seg,
                             "label": label, "shift": shift if shifted else None,
                             "photo": path.relative_to(photos_root).as_posix()})
    finally:
        writer.release()
    return write_sidecar(out_path, fps, per_seg * n_segments, w, h, segments)
