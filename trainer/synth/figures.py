"""What moves in a park besides the animals: walkers, balls, blowing leaves, cloud shadows.

Each is drawn with a few OpenCV primitives and a matte, like the cartoon animals. A
walker is an articulated silhouette (head, torso, swinging arms and legs) in clothes
colours, drawn in a handful of gait poses once per track and scaled per frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._draw import F32, U8, col, matte, pt, smooth_noise
from .sprites import Sprite

SKIN = [(60, 90, 140), (90, 130, 190), (130, 170, 220), (40, 60, 100), (110, 150, 200)]
CLOTHES = [(40, 40, 40), (150, 60, 30), (40, 40, 160), (200, 200, 200), (60, 120, 60),
           (30, 130, 200), (120, 80, 120), (160, 140, 90), (20, 20, 90), (90, 90, 90)]
BALLS = [(40, 220, 210), (30, 30, 210), (200, 90, 30), (30, 140, 240), (230, 230, 230)]
LEAVES = [(20, 80, 150), (30, 120, 200), (40, 150, 210), (30, 90, 110), (40, 110, 60)]


def _pick(rng: np.random.Generator, palette: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    c = np.array(palette[int(rng.integers(len(palette)))], np.float64) * rng.uniform(0.8, 1.15)
    return col(np.clip(c, 0, 255))


class _Canvas:
    """A picture and its matte, painted together."""

    def __init__(self, h: int, w: int) -> None:
        self.img, self.mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)

    def line(self, p0: tuple[float, float], p1: tuple[float, float],
             colour: tuple[int, int, int], thickness: int) -> None:
        for tgt, c in ((self.img, colour), (self.mask, (255, 255, 255))):
            cv2.line(tgt, pt(*p0), pt(*p1), c, thickness, cv2.LINE_AA)

    def ellipse(self, centre: tuple[float, float], axes: tuple[float, float],
                colour: tuple[int, int, int], arc: tuple[int, int] = (0, 360)) -> None:
        for tgt, c in ((self.img, colour), (self.mask, (255, 255, 255))):
            cv2.ellipse(tgt, pt(*centre), pt(max(1, axes[0]), max(1, axes[1])), 0, arc[0],
                        arc[1], c, -1, cv2.LINE_AA)

    def sprite(self, anchor: tuple[float, float]) -> Sprite:
        return Sprite(self.img, matte(self.mask), anchor=anchor)


def walker_poses(rng: np.random.Generator, height: int, n_poses: int = 8) -> list[Sprite]:
    """``n_poses`` frames of one person's gait cycle, ``height`` pixels tall, anchored at
    the point between the feet."""
    skin, shirt, trousers = _pick(rng, SKIN), _pick(rng, CLOTHES), _pick(rng, CLOTHES)
    hair, shoes = _pick(rng, [(20, 20, 30), (40, 60, 90), (120, 160, 190)]), (30, 30, 30)
    h = float(height)
    cx = int(h * 0.6) / 2
    stride, swing = h * rng.uniform(0.13, 0.18), h * rng.uniform(0.1, 0.14)
    leg_t, arm_t = max(2, int(h * 0.085)), max(1, int(h * 0.055))
    poses = []
    for i in range(n_poses):
        phase = math.sin(2 * math.pi * i / n_poses)
        cv = _Canvas(height, int(h * 0.6))
        for side in (-1, 1):  # legs, then shoes at the feet
            foot = (cx + side * phase * stride, 0.97 * h)
            cv.line((cx + side * 0.05 * h, 0.5 * h), foot, trousers, leg_t)
            cv.ellipse(foot, (0.04 * h, 0.02 * h), shoes)
        cv.ellipse((cx, 0.34 * h), (0.12 * h, 0.19 * h), shirt)  # torso
        for side in (-1, 1):  # arms swing against the legs
            shoulder = (cx + side * 0.1 * h, 0.2 * h)
            hand = (shoulder[0] - side * phase * swing + side * 0.02 * h, 0.5 * h)
            cv.line(shoulder, hand, shirt, arm_t)
            cv.ellipse(hand, (0.025 * h, 0.025 * h), skin)
        cv.ellipse((cx, 0.08 * h), (0.065 * h, 0.065 * h), skin)  # head, then hair on top
        cv.ellipse((cx, 0.07 * h), (0.066 * h, 0.055 * h), hair, arc=(180, 360))
        poses.append(cv.sprite((cx, 0.99 * h)))
    return poses


def ball_sprite(rng: np.random.Generator, size: int = 48) -> Sprite:
    """A shaded ball with a seam, drawn at ``size`` pixels (scaled down per frame)."""
    colour = np.array(_pick(rng, BALLS), np.float32)
    img, mask = np.zeros((size, size, 3), np.uint8), np.zeros((size, size), np.uint8)
    r = size / 2 - 1
    cv2.circle(mask, pt(size / 2, size / 2), int(r), 255, -1, cv2.LINE_AA)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    light = 1.15 - 0.5 * np.hypot(xx - size * 0.35, yy - size * 0.35) / size  # top-left sun
    img[:] = np.clip(colour * light[..., None], 0, 255).astype(np.uint8)
    cv2.ellipse(img, pt(size / 2, size / 2), pt(r * 0.9, r * 0.4), 30, 0, 360,
                (240, 240, 240), max(1, size // 24), cv2.LINE_AA)
    return Sprite(img, matte(mask))


class LeafCluster:
    """A handful of leaves tumbling around a centre that the wind carries."""

    def __init__(self, rng: np.random.Generator, count: int, spread: float, size: float):
        self.offsets = rng.normal(0, spread, (count, 2))
        self.orbit = rng.uniform(0.2, 0.6, count) * spread
        self.phase, self.turn = rng.uniform(0, 2 * np.pi, count), rng.uniform(0.3, 1.2, count)
        self.sizes = rng.uniform(0.6, 1.4, count) * size
        self.colours = [_pick(rng, LEAVES) for _ in range(count)]

    def draw(self, t: float, scale: float) -> tuple[U8, F32, float, float]:
        """(BGR, matte, anchor x, anchor y) of the cluster at time ``t`` seconds."""
        ang = self.phase + self.turn * t * 2 * np.pi
        pos = (self.offsets + self.orbit[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1))
        pos *= scale
        sizes = np.maximum(1.5, self.sizes * scale)
        pad = float(sizes.max()) + 2
        x0, y0 = pos.min(0) - pad
        w, h = (int(v) + 1 for v in pos.max(0) - pos.min(0) + 2 * pad)
        img, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
        for (x, y), s, a, colour in zip(pos, sizes, ang, self.colours, strict=True):
            centre, axes = pt(x - x0, y - y0), pt(s, s / 2.2)
            cv2.ellipse(img, centre, axes, math.degrees(a), 0, 360, colour, -1, cv2.LINE_AA)
            cv2.ellipse(mask, centre, axes, math.degrees(a), 0, 360, 255, -1, cv2.LINE_AA)
        return img, matte(mask), float(-x0), float(-y0)


def shadow_matte(rng: np.random.Generator, width: int, height: int) -> F32:
    """A cloud's shadow: a soft, ragged blob filling about a ``width`` x ``height`` box."""
    m = np.zeros((height, width), np.float32)
    cv2.ellipse(m, pt(width / 2, height / 2), pt(width * 0.4, height * 0.4), 0, 0, 360, 1.0, -1)
    m *= 0.7 + 0.3 * np.clip(smooth_noise(rng, height, width, 4), -1, 1)
    m = np.asarray(cv2.GaussianBlur(m, (0, 0), 0.08 * min(width, height)), np.float32)
    out: F32 = m / max(float(m.max()), 1e-6)
    return out
