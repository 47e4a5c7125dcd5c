"""The static part of a park camera's view: ground with perspective, scenery, foreground.

A camera on a pole looks down a lawn: far away (near the top of the frame) things are
small, near the bottom they are big. :class:`Ground` holds that perspective; the scene
sizes every animal, walker and ball by it. The backdrop is drawn once per camera (per
seed): grass, maybe a gravel path narrowing into the distance, a tree line and a fence
at the far edge, benches and trees on the lawn. In front of everything may stand a bush
or a post: animals walk behind them (occlusion), and may appear from behind the bush.
Arrays are padded by ``pad`` pixels on every side so a shaking camera never runs out of
picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ._draw import F32, U8, col, matte, pt
from .cartoon import park_background

Rect = tuple[int, int, int, int]  # x, y, w, h in world (unshaken frame) pixels


@dataclass(frozen=True)
class Ground:
    """Perspective of the lawn: ``scale(y)`` is 1 at the bottom edge, ``far`` at the horizon."""

    width: int
    height: int
    horizon: float  # y of the far edge of the lawn
    far: float = 0.3

    def scale(self, y: float) -> float:
        t = (y - self.horizon) / max(1.0, self.height - self.horizon)
        return max(self.far, self.far + (1 - self.far) * t)

    def band(self) -> tuple[float, float]:
        """Range of feet positions (y) where things walk: the lawn, not the tree line."""
        return self.horizon + 0.08 * self.height, self.height * 0.98


@dataclass(frozen=True)
class Backdrop:
    image: U8  # (H + 2 pad) x (W + 2 pad) x 3
    fg_bgr: U8 | None  # foreground layer, same shape (None: nothing in front)
    fg_alpha: F32 | None
    fg_boxes: list[tuple[int, int, int, int]]  # padded-array x0, y0, x1, y1 of foreground
    pad: int
    ground: Ground
    hideouts: list[Rect]  # foreground cover large enough to hide an animal behind


def _far_edge(img: U8, ground: Ground, pad: int, rng: np.random.Generator) -> None:
    """Sky, a tree line along the horizon and a fence in front of it."""
    w, hz = img.shape[1], int(ground.horizon) + pad
    sky_y = int(hz - 0.08 * ground.height)
    if sky_y > 0:
        sky = np.array([rng.uniform(200, 235), rng.uniform(190, 215), rng.uniform(170, 200)])
        img[:sky_y] = np.clip(sky - np.linspace(0, 30, sky_y)[:, None], 0, 255)[:, None, :]
    r = 0.05 * ground.height
    for x in np.arange(-r, w + r, r * 0.8):
        c = col((rng.uniform(25, 55), rng.uniform(60, 100), rng.uniform(30, 60)))
        y = hz - rng.uniform(0.02, 0.08) * ground.height
        cv2.circle(img, pt(x, y), int(r * rng.uniform(0.8, 1.5)), c, -1, cv2.LINE_AA)
    fence_y, post_h = hz + 0.03 * ground.height, 0.05 * ground.height
    wood = col((rng.uniform(60, 110), rng.uniform(80, 130), rng.uniform(100, 150)))
    for dy in (0.2, 0.7):
        cv2.line(img, pt(0, fence_y - dy * post_h), pt(w, fence_y - dy * post_h), wood, 2)
    for x in np.arange(rng.uniform(0, 30), w, rng.uniform(0.04, 0.07) * ground.width):
        cv2.line(img, pt(x, fence_y), pt(x, fence_y - post_h), wood, 3)


def _lawn_things(img: U8, ground: Ground, pad: int, rng: np.random.Generator) -> None:
    """A gravel path into the distance, benches and trees sized by perspective."""
    h, w = img.shape[:2]
    if rng.random() < 0.7:
        x_far, x_near = rng.uniform(0.3, 0.7) * w, rng.uniform(0.1, 0.9) * w
        half_far, half_near = 0.03 * w, rng.uniform(0.1, 0.18) * w
        poly = np.array([pt(x_far - half_far, ground.horizon + pad), pt(x_far + half_far,
                         ground.horizon + pad), pt(x_near + half_near, h),
                         pt(x_near - half_near, h)], np.int32)
        sand = col((rng.uniform(120, 160), rng.uniform(160, 190), rng.uniform(180, 215)))
        cv2.fillPoly(img, [poly], sand, cv2.LINE_AA)
    lo, hi = ground.band()
    for _ in range(int(rng.integers(1, 3))):  # benches: seat, backrest, legs
        y = rng.uniform(lo, hi * 0.8)
        s = ground.scale(y)
        x, bw, bh = rng.uniform(0.05, 0.8) * w, 0.22 * w * s, 0.1 * ground.height * s
        wood = col((rng.uniform(30, 60), rng.uniform(60, 100), rng.uniform(100, 150)))
        yy = y + pad
        cv2.rectangle(img, pt(x, yy - bh), pt(x + bw, yy - 0.8 * bh), wood, -1)
        cv2.rectangle(img, pt(x, yy - 0.5 * bh), pt(x + bw, yy - 0.35 * bh), wood, -1)
        for xx in (x + 0.05 * bw, x + 0.92 * bw):
            cv2.rectangle(img, pt(xx, yy - bh), pt(xx + 0.03 * bw, yy), (40, 40, 40), -1)
    for _ in range(int(rng.integers(1, 3))):  # trees: trunk and a crown of discs
        y = rng.uniform(lo, hi * 0.7)
        s = ground.scale(y)
        x, yy, tw = rng.uniform(0, w), y + pad, 0.025 * w * s
        top = yy - 0.35 * ground.height * s
        cv2.rectangle(img, pt(x - tw, top), pt(x + tw, yy), (30, 60, 90), -1)
        for _ in range(7):
            c = col((rng.uniform(20, 50), rng.uniform(70, 120), rng.uniform(20, 60)))
            p = pt(x + rng.normal(0, 0.06 * w * s), top + rng.normal(0, 0.05 * ground.height * s))
            cv2.circle(img, p, int(rng.uniform(0.05, 0.09) * w * s), c, -1, cv2.LINE_AA)


def _foreground(shape: tuple[int, int], ground: Ground, pad: int, rng: np.random.Generator
                ) -> tuple[U8, U8, list[Rect]]:
    """A bush in a bottom corner and maybe a post, right in front of the camera."""
    h, w = shape
    bgr, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
    hideouts: list[Rect] = []
    if rng.random() < 0.75:
        cx = (rng.uniform(0.08, 0.25) if rng.random() < 0.5 else rng.uniform(0.75, 0.92))
        cx, cy, r = cx * ground.width, ground.height * 0.97, rng.uniform(0.09, 0.14) * ground.width
        for _ in range(14):
            p = pt(cx + rng.normal(0, 0.6 * r) + pad, cy - abs(rng.normal(0, 0.5 * r)) + pad)
            rad = int(rng.uniform(0.35, 0.6) * r)
            c = col((rng.uniform(15, 45), rng.uniform(70, 130), rng.uniform(20, 60)))
            cv2.circle(bgr, p, rad, c, -1, cv2.LINE_AA)
            cv2.circle(mask, p, rad, 255, -1, cv2.LINE_AA)
        x, y, bw, bh = cv2.boundingRect((mask > 127).astype(np.uint8))
        hideouts.append((x - pad, y - pad, bw, bh))
    if rng.random() < 0.35:
        px = rng.uniform(0.05, 0.95) * w
        top, half = rng.uniform(0.45, 0.65) * h, max(2.0, 0.012 * ground.width)
        cv2.rectangle(bgr, pt(px - half, top), pt(px + half, h), (70, 70, 75), -1)
        cv2.rectangle(mask, pt(px - half, top), pt(px + half, h), 255, -1)
    return bgr, mask, hideouts


def park_backdrop(rng: np.random.Generator, width: int, height: int, pad: int = 4
                  ) -> Backdrop:
    """A park seen by a pole-mounted camera; different for every ``rng`` seed."""
    ground = Ground(width, height, horizon=rng.uniform(0.15, 0.3) * height)
    img = park_background(rng, height + 2 * pad, width + 2 * pad)
    _far_edge(img, ground, pad, rng)
    _lawn_things(img, ground, pad, rng)
    fg_bgr, mask, hideouts = _foreground(img.shape[:2], ground, pad, rng)
    if not mask.any():
        return Backdrop(img, None, None, [], pad, ground, hideouts)
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8))
    boxes = [(int(x), int(y), int(x + bw), int(y + bh)) for x, y, bw, bh, _ in stats[1:n]]
    return Backdrop(img, fg_bgr, matte(mask), boxes, pad, ground, hideouts)


def flat_backdrop(colour: tuple[int, int, int], width: int, height: int, pad: int = 4
                  ) -> Backdrop:
    """One flat colour and nothing in front: where every changed pixel is an object's."""
    img = np.empty((height + 2 * pad, width + 2 * pad, 3), np.uint8)
    img[:] = colour
    return Backdrop(img, None, None, [], pad, Ground(width, height, 0.2 * height), [])
