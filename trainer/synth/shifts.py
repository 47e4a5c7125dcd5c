"""Camera shifts on still images: night, infrared, motion blur, rain, tilt, dusk, heavy JPEG,
less light (dim).

``apply_shift(img, shift, severity, rng)`` is deterministic for a given ``rng`` state; the
trainer applies it to its test images to report accuracy and drift per shift, benchmarks
apply it to frames. The tone curves and constants here are shared with the video-rate
conditions of :mod:`trainer.synth.conditions`, so a night clip and a night still agree.

What it can stand for: controlled covariate drift of the kinds a park camera sees. What it
cannot: real sensor physics. The ``ir`` eye-shine is a heuristic (small dark blobs turn
bright), the night noise is Gaussian, and rain is streaks over a haze.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._draw import F32, FA, U8, check_bgr, check_choice, pt

SHIFTS = ("night", "ir", "blur", "rain", "tilt", "dusk", "jpeg", "dim")

# Near-IR: foliage reflects strongly, so green weighs most in the grey level (BGR order).
IR_WEIGHTS = (0.15, 0.6, 0.25)
IR_CONTRAST, IR_LIFT, IR_VIGNETTE = 1.2, 10.0, 0.3
RAIN_HAZE = (175.0, 170.0, 160.0)  # BGR of the grey-blue veil rain puts over a scene
RAIN_HAZE_SHARE = 0.35


def motion_kernel(length: int, angle_deg: float) -> F32:
    """A line of ones (not normalised), ``length`` pixels long at ``angle_deg``."""
    k = np.zeros((length, length), np.float32)
    c, a = (length - 1) / 2, math.radians(angle_deg)
    dx, dy = math.cos(a) * c, math.sin(a) * c
    cv2.line(k, pt(c - dx, c - dy), pt(c + dx, c + dy), 1.0, 1, cv2.LINE_AA)
    return k


def night_tone(f: FA, s: float) -> FA:
    """Under-exposure with a steeper tone curve and a blue cast (per pixel and channel)."""
    f = 255 * (f / 255) ** (1 + 0.8 * s) * (1 - 0.7 * s)
    return f * np.array([1 + 0.3 * s, 1.0, 1 - 0.3 * s], np.float32)


def dusk_tone(f: FA, s: float) -> FA:
    """Low warm light: darker, a little steeper, less blue and more red."""
    f = 255 * (f / 255) ** (1 + 0.3 * s) * (1 - 0.45 * s)
    return f * np.array([1 - 0.25 * s, 1 - 0.05 * s, 1 + 0.08 * s], np.float32)


def _night(f: FA, s: float, rng: np.random.Generator) -> FA:
    # Under-exposure with a blue cast and amplified (gain) noise.
    f = night_tone(f, s)
    luma_noise = rng.normal(0, 14 * s, f.shape[:2])[..., None]
    return f + luma_noise + rng.normal(0, 5 * s, f.shape)


def _dim(f: FA, s: float, rng: np.random.Generator) -> FA:
    # Less light on the scene (a lamp dimmed or out, a weaker illuminator): the camera's
    # gain lifts what is left, and its noise with it. Luma noise only: no colour added.
    return f * (1 - 0.7 * s) + rng.normal(0, 10 * s, f.shape[:2])[..., None]


def _dusk(f: FA, s: float, rng: np.random.Generator) -> FA:
    return dusk_tone(f, s) + rng.normal(0, 6 * s, f.shape[:2])[..., None]


def eye_shine(grey: FA, max_blobs: int | None = None) -> F32:
    """Brightness that tapetum eye-shine adds under an IR illuminator, per pixel.

    Compact, solid dark blobs much darker than their surroundings (eyes, sometimes a
    nose) light up; thin stripes and whiskers fail the shape tests. Scales with the
    image: the structuring elements are fractions of its short side. ``max_blobs`` keeps
    only the darkest few (a photo of fur has many dark specks, an animal two eyes).
    """
    h, w = grey.shape[:2]
    m = min(h, w)
    big = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (m // 12 | 1, m // 12 | 1))
    g8 = np.clip(grey, 0, 255).astype(np.uint8)
    closing = np.ones((m // 60 | 1,) * 2, np.uint8)  # fills specular glints inside pupils
    g8 = np.asarray(cv2.morphologyEx(g8, cv2.MORPH_CLOSE, closing), np.uint8)
    hat = cv2.morphologyEx(g8, cv2.MORPH_BLACKHAT, big)
    _, lab, st, _ = cv2.connectedComponentsWithStats((hat > 45).astype(np.uint8))
    bw, bh, area = st[:, 2], st[:, 3], st[:, 4]
    keep = (area >= 3) & (area <= (0.05 * m) ** 2) & (area >= 0.35 * bw * bh)
    keep &= np.maximum(bw, bh) <= 4 * np.minimum(bw, bh)
    keep[0] = False  # label 0 is the background
    if max_blobs is not None and keep.sum() > max_blobs:
        depth = np.bincount(lab.ravel(), weights=hat.ravel(), minlength=len(keep))
        depth = np.where(keep, depth / np.maximum(area, 1), -1.0)
        keep = np.zeros_like(keep)
        keep[np.argsort(depth)[::-1][:max_blobs]] = True
    return np.asarray(cv2.GaussianBlur(keep[lab].astype(np.float32) * 220, (0, 0),
                                       0.5 + m / 200), np.float32)


def _ir(f: FA, s: float, rng: np.random.Generator) -> FA:
    h, w = f.shape[:2]
    # The illuminator makes a hot spot in the centre; eye-shine turns eyes bright.
    wb, wg, wr = IR_WEIGHTS
    grey = wb * f[..., 0] + wg * f[..., 1] + wr * f[..., 2]
    grey = (grey - grey.mean()) * IR_CONTRAST + grey.mean() + IR_LIFT
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rad2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    grey *= 1 - IR_VIGNETTE * rad2
    grey = grey + eye_shine(grey) + rng.normal(0, 4, (h, w))
    return (1 - s) * f + s * np.repeat(grey[..., None], 3, 2)


def _blur(f: FA, s: float, rng: np.random.Generator) -> FA:
    length = 1 + round(s * 0.12 * min(f.shape[:2]))
    if length >= 3:
        k = motion_kernel(length | 1, rng.uniform(0, 180))
        f = np.asarray(cv2.filter2D(f, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT))
    return np.asarray(cv2.GaussianBlur(f, (0, 0), 0.3 + 1.2 * s), np.float32)


def rain_streaks(rng: np.random.Generator, h: int, w: int, s: float) -> F32:
    """Streak opacity in [0, 1]: sparse drops smeared along one wind direction."""
    drops = (rng.random((h, w)) < 0.004 * s).astype(np.float32)
    length = max(3, int(0.1 * min(h, w))) | 1
    smear = cv2.filter2D(drops, -1, motion_kernel(length, 90 + rng.normal(0, 12)))
    streaks: F32 = np.clip(np.asarray(smear, np.float32) * 0.7, 0, 1)
    return streaks


def _rain(f: FA, s: float, rng: np.random.Generator) -> FA:
    h, w = f.shape[:2]
    haze = np.array(RAIN_HAZE, np.float32)
    f = f * (1 - RAIN_HAZE_SHARE * s) + haze * RAIN_HAZE_SHARE * s
    streaks = rain_streaks(rng, h, w, s)[..., None]
    return f * (1 - streaks) + 235 * streaks


def _tilt(f: FA, s: float, rng: np.random.Generator) -> FA:
    h, w = f.shape[:2]
    ang = s * rng.uniform(10, 25) * rng.choice([-1, 1])
    rot = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1 + 0.15 * s), [0, 0, 1]])
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    dst = src + rng.uniform(-1, 1, (4, 2)).astype(np.float32) * 0.1 * s * min(h, w)
    persp = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(f, persp @ rot, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    return np.asarray(out, np.float32)


def _jpeg(f: FA, s: float, rng: np.random.Generator) -> FA:
    # A starved encoder (low bitrate NVR setting): quality 70 down to 5 at full severity.
    quality = round(70 - 65 * s)
    ok, buf = cv2.imencode(".jpg", np.clip(f, 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.float32)


_SHIFT_FNS = {"night": _night, "ir": _ir, "blur": _blur, "rain": _rain, "tilt": _tilt,
              "dusk": _dusk, "jpeg": _jpeg, "dim": _dim}


def apply_shift(img: np.ndarray, shift: str, severity: float,
                rng: np.random.Generator) -> np.ndarray:
    """Camera shift `shift` at `severity` in [0, 1] (0 returns an unchanged copy)."""
    check_choice(shift, SHIFTS, "shift")
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    check_bgr(img)
    if severity == 0.0:
        return img.copy()
    out: FA = _SHIFT_FNS[shift](img.astype(np.float32), float(severity), rng)
    result: U8 = np.clip(out, 0, 255).astype(np.uint8)
    return result
