"""Sprites: a picture with a matte, scaled on demand, and pasting one into a frame.

A scene draws each object as a sprite pasted at an integer position, so its ground-truth
box is exact. An animal walking toward the camera changes size nearly every frame, so a
sprite keeps a pyramid of halved copies (area-averaged once) and scales from the nearest
larger one with a cheap bilinear resize; scaled copies are cached per (width, mirrored).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ._draw import F32, U8

OPAQUE = 0.5  # matte level at which a pixel counts as the object's (boxes, visibility)


@dataclass(frozen=True)
class Scaled:
    """A sprite at one size: BGR, matte, anchor offset (px) and opaque pixel count."""

    bgr: U8
    alpha: F32
    anchor_x: int  # where the world anchor (feet) falls inside the sprite
    anchor_y: int
    area: int  # pixels with alpha >= OPAQUE: the denominator of visible_fraction


@dataclass
class Sprite:
    """A picture cropped to its matte; ``anchor`` is a point in the uncropped picture.

    The anchor defaults to the bottom centre of the matte's box (an animal's feet).
    """

    bgr: U8
    alpha: F32
    anchor: tuple[float, float] | None = None
    origin: tuple[float, float] = field(init=False, default=(0.0, 0.0))  # anchor in the crop
    opaque_width: int = field(init=False, default=0)
    _cache: dict[tuple[int, bool], Scaled] = field(default_factory=dict, repr=False)
    _pyramid: list[tuple[U8, F32]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        ys, xs = np.nonzero(self.alpha >= 0.02)
        if len(xs) == 0:
            raise ValueError("a sprite needs a matte with some opaque pixels")
        x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
        ax, ay = self.anchor if self.anchor is not None else ((x0 + x1) / 2, float(y1))
        self.origin = (ax - x0, ay - y0)
        self.bgr = np.ascontiguousarray(self.bgr[y0:y1, x0:x1])
        self.alpha = np.ascontiguousarray(self.alpha[y0:y1, x0:x1], np.float32)
        cols = np.nonzero((self.alpha >= OPAQUE).any(axis=0))[0]
        self.opaque_width = int(cols[-1] - cols[0] + 1) if len(cols) else self.width
        level = (self.bgr, self.alpha)
        self._pyramid = [level]
        while level[1].shape[1] >= 32 and level[1].shape[0] >= 32:
            size = (level[1].shape[1] // 2, level[1].shape[0] // 2)
            level = (np.asarray(cv2.resize(level[0], size, interpolation=cv2.INTER_AREA),
                                np.uint8),
                     np.asarray(cv2.resize(level[1], size, interpolation=cv2.INTER_AREA),
                                np.float32))
            self._pyramid.append(level)

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])

    def at_width(self, width: int, mirrored: bool = False) -> Scaled:
        """This sprite scaled to ``width`` pixels (aspect kept), maybe mirrored left-right."""
        width = max(1, int(width))
        key = (width, mirrored)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        f = width / self.width
        height = max(1, round(self.height * f))
        src_bgr, src_alpha = next(((b, a) for b, a in reversed(self._pyramid)
                                   if a.shape[1] >= width), self._pyramid[0])
        bgr = np.asarray(cv2.resize(src_bgr, (width, height), interpolation=cv2.INTER_LINEAR),
                         np.uint8)
        alpha = np.asarray(cv2.resize(src_alpha, (width, height),
                                      interpolation=cv2.INTER_LINEAR), np.float32)
        ax, ay = self.origin[0] * f, self.origin[1] * f
        if mirrored:
            bgr, alpha, ax = bgr[:, ::-1].copy(), alpha[:, ::-1].copy(), width - ax
        scaled = Scaled(bgr, alpha, round(ax), round(ay), int(np.count_nonzero(alpha >= OPAQUE)))
        if len(self._cache) >= 24:  # sizes drift slowly: recent ones are the ones reused
            self._cache.clear()
        self._cache[key] = scaled
        return scaled

    def at_opaque_width(self, width: float, mirrored: bool = False) -> Scaled:
        """Scaled so the opaque part (what a box measures) is about ``width`` pixels wide."""
        return self.at_width(round(width * self.width / self.opaque_width), mirrored)

    def at_height(self, height: int, mirrored: bool = False) -> Scaled:
        return self.at_width(round(max(1, height) * self.width / self.height), mirrored)


def clip_box(x: int, y: int, w: int, h: int, width: int, height: int) -> tuple[int, ...] | None:
    """(x0, y0, x1, y1) of a box inside a width x height frame, or None if outside."""
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def paste(frame: U8, bgr: U8, alpha: F32, x: int, y: int) -> None:
    """Alpha-blend ``bgr`` over ``frame`` with its top-left at (x, y), clipped, in place."""
    h, w = alpha.shape
    box = clip_box(x, y, w, h, frame.shape[1], frame.shape[0])
    if box is None:
        return
    x0, y0, x1, y1 = box
    sy, sx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
    a = np.ascontiguousarray(alpha[sy, sx])
    roi = frame[y0:y1, x0:x1]
    roi[:] = cv2.blendLinear(np.ascontiguousarray(bgr[sy, sx]), np.ascontiguousarray(roi),
                             a, 1.0 - a)
