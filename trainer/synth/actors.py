"""Tracks that place a sprite in each frame of their interval: animals and distractors.

``place(k, ir)`` answers where the track's picture goes in frame ``k`` (world pixels, top
left), at which size and depth (the feet's height in the frame: nearer is drawn later).
``ir`` asks for the picture as an infrared camera sees it (eye-shine on animals).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ._draw import F32, U8
from .backdrop import Ground
from .figures import LeafCluster
from .groundtruth import CutoutMethod, Kind, Label, Source
from .motion import F64
from .shifts import IR_WEIGHTS, eye_shine
from .sprites import OPAQUE, Scaled, Sprite

MIN_WIDTH, MAX_WIDTH = 0.05, 0.40  # an animal's width, as a share of the frame's


def animal_width(ground: Ground, near: float, y: float) -> float:
    """Width in pixels of an animal whose feet are at ``y`` (perspective, then 5-40 %)."""
    return min(MAX_WIDTH, max(MIN_WIDTH, near * ground.scale(y))) * ground.width


def walker_height(ground: Ground, near: float, y: float) -> float:
    return min(0.95, near * ground.scale(y)) * ground.height


@dataclass(frozen=True)
class Placement:
    x: int  # top-left corner, world pixels
    y: int
    sprite: Scaled
    depth: float
    darken: float = 0.0  # > 0: a shadow, which multiplies the frame by 1 - darken * alpha


def _placed(s: Scaled, x: float, y: float, depth: float, darken: float = 0.0) -> Placement:
    return Placement(round(x) - s.anchor_x, round(y) - s.anchor_y, s, depth, darken)


@dataclass(kw_only=True)
class Actor:
    """A track: what it is, where its picture came from, and where it is in each frame."""

    kind: Kind
    label: Label
    start: int  # first frame of its interval (may be < 0: already there at the start)
    end: int  # exclusive
    xy: F64 = field(repr=False)  # anchor position per frame of [start, end), world pixels
    ground: Ground = field(repr=False)
    source: Source = "drawn"
    photo: str | None = None
    photo_sha256: str | None = None
    cutout: CutoutMethod | None = None
    track_id: int = 0  # set once every track of the clip is known

    def place(self, k: int, ir: bool) -> Placement | None:
        """Where the picture goes in frame ``k``; None outside the track's interval."""
        i = k - self.start
        if not 0 <= i < len(self.xy):
            return None
        x, y = self.xy[i]
        return self._at(i, float(x), float(y), ir)

    def _at(self, i: int, x: float, y: float, ir: bool) -> Placement:
        raise NotImplementedError


def facing(xy: F64, rng: np.random.Generator) -> NDArray[np.bool_]:
    """Mirrored (facing right) while moving right; kept while still (no flicker)."""
    vx = np.gradient(xy[:, 0]) if len(xy) > 1 else np.zeros(len(xy))
    out, state = np.zeros(len(xy), bool), bool(rng.random() < 0.5)
    for i, v in enumerate(vx):
        if abs(v) > 0.3:
            state = bool(v > 0)
        out[i] = state
    return out


def _ir_sprite(sprite: Sprite) -> Sprite:
    """The sprite under an IR illuminator: eyes that shine (where the matte is solid)."""
    wb, wg, wr = IR_WEIGHTS
    f = sprite.bgr.astype(np.float32)
    grey = wb * f[..., 0] + wg * f[..., 1] + wr * f[..., 2]
    shine = eye_shine(grey, max_blobs=3) * (sprite.alpha >= OPAQUE)
    bgr: U8 = np.clip(f + shine[..., None], 0, 255).astype(np.uint8)
    return Sprite(bgr, sprite.alpha, anchor=sprite.origin)


@dataclass(kw_only=True)
class AnimalActor(Actor):
    sprite: Sprite = field(repr=False)
    near: float = 0.2  # opaque width at the bottom of the frame, share of the frame width
    mirrored: NDArray[np.bool_] = field(repr=False)
    _ir: Sprite | None = field(default=None, repr=False)

    def _at(self, i: int, x: float, y: float, ir: bool) -> Placement:
        if ir and self._ir is None:
            self._ir = _ir_sprite(self.sprite)
        sprite = self._ir if ir and self._ir is not None else self.sprite
        width = animal_width(self.ground, self.near, y)
        return _placed(sprite.at_opaque_width(width, bool(self.mirrored[i])), x, y, y)


@dataclass(kw_only=True)
class WalkerActor(Actor):
    poses: list[Sprite] = field(default_factory=list, repr=False)
    near: float = 0.7  # height at the bottom of the frame, share of the frame height

    def _at(self, i: int, x: float, y: float, ir: bool) -> Placement:
        h = walker_height(self.ground, self.near, y)
        # One gait cycle per stride of about 0.8 body heights, whatever the walking speed.
        walked = abs(x - self.xy[0, 0]) / max(1.0, 0.8 * h)
        pose = self.poses[int(walked * len(self.poses)) % len(self.poses)]
        return _placed(pose.at_height(round(h)), x, y, y)


@dataclass(kw_only=True)
class BallActor(Actor):
    sprite: Sprite = field(repr=False)
    near: float = 0.04  # diameter at the bottom of the frame, share of the frame width
    hop: F64 = field(repr=False)  # height above the ground per frame (at the bottom edge)

    def _at(self, i: int, x: float, y: float, ir: bool) -> Placement:
        s = self.ground.scale(y)
        d = max(3, round(self.near * s * self.ground.width))
        return _placed(self.sprite.at_width(d), x, y - self.hop[i] * s, y)


@dataclass(kw_only=True)
class LeavesActor(Actor):
    cluster: LeafCluster = field(repr=False)
    lift: F64 = field(repr=False)
    fps: float = 10.0

    def _at(self, i: int, x: float, y: float, ir: bool) -> Placement:
        s = self.ground.scale(y)
        img, alpha, ax, ay = self.cluster.draw(i / self.fps, s)
        area = int(np.count_nonzero(alpha >= OPAQUE))
        return _placed(Scaled(img, alpha, round(ax), round(ay), area), x, y - self.lift[i] * s, y)


@dataclass(kw_only=True)
class ShadowActor(Actor):
    matte: F32 = field(repr=False)
    strength: float = 0.4
    _scaled: Scaled | None = field(default=None, repr=False)

    def _at(self, i: int, x: float, y: float, ir: bool) -> Placement:
        if self._scaled is None:
            h, w = self.matte.shape
            area = int(np.count_nonzero(self.matte >= OPAQUE))
            self._scaled = Scaled(np.zeros((1, 1, 3), np.uint8), self.matte, w // 2, h // 2, area)
        return _placed(self._scaled, x, y, float("-inf"), self.strength)
