"""Where a track is in every frame: wandering animals, followers, things crossing the view.

Positions are of an object's *anchor* (an animal's or walker's feet, a shadow's centre)
in world pixels, one per frame of the track's interval. An animal comes in from beyond an
edge (or from behind a bush), wanders through a few random spots along a smooth curve
with a smoothly varying speed, may stop and rest for a while (a resting animal stays
exactly still), and leaves beyond an edge: its first and last positions are out of view.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from .backdrop import Ground, Rect

SizeFn = Callable[[float], tuple[float, float]]  # feet y -> (width, height) of the sprite there
F64 = NDArray[np.float64]
_PER_SEGMENT = 40  # curve samples between two waypoints


def speed_profile(n: int, rng: np.random.Generator, wobble: float = 0.35) -> F64:
    """Share of the way done at each of ``n`` frames: 0 first, 1 last, smooth random speed."""
    if n <= 1:
        return np.zeros(max(n, 0))
    u = np.linspace(0, 1, n)
    v = (1 + wobble * np.sin(2 * np.pi * rng.uniform(1, 3) * u + rng.uniform(0, 6))
         + wobble * 0.6 * np.sin(2 * np.pi * rng.uniform(3, 7) * u + rng.uniform(0, 6)))
    cum = np.concatenate([[0.0], np.cumsum(np.maximum(v[:-1], 0.05))])
    return np.asarray(cum / cum[-1], np.float64)


def catmull_rom(points: F64, per_segment: int = _PER_SEGMENT) -> F64:
    """A smooth curve through ``points`` (uniform Catmull-Rom, ends repeated)."""
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    out.append(points[-1:])
    return np.asarray(np.vstack(out), np.float64)


def _arc(curve: F64) -> F64:
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(curve, axis=0).T))])


def _at(curve: F64, arc: F64, s: F64) -> F64:
    return np.stack([np.interp(s, arc, curve[:, 0]), np.interp(s, arc, curve[:, 1])], 1)


def hidden_edge_point(edge: str, ground: Ground, size: SizeFn, rng: np.random.Generator
                      ) -> tuple[float, float]:
    """An anchor position just beyond ``edge`` (left, right, bottom) where nothing shows."""
    lo, hi = ground.band()
    if edge == "bottom":
        _, tallest = size(ground.height * 2.0)
        return rng.uniform(0.15, 0.85) * ground.width, ground.height + tallest + 4
    y = rng.uniform(lo, hi)
    w, _ = size(y)
    return (-0.6 * w - 4, y) if edge == "left" else (ground.width + 0.6 * w + 4, y)


def _way(ground: Ground, size: SizeFn, hideouts: list[Rect], rng: np.random.Generator
         ) -> tuple[float, float]:
    """Where an animal comes in or goes out: an edge, or behind a bush it fits behind."""
    for x, y, bw, bh in hideouts:
        feet = y + 0.85 * bh
        w, h = size(feet)
        if w <= 0.8 * bw and h <= 0.7 * bh and rng.random() < 0.35:
            return x + bw / 2, feet
    edge = str(rng.choice(["left", "right", "bottom"], p=[0.4, 0.4, 0.2]))
    return hidden_edge_point(edge, ground, size, rng)


def wander(n: int, fps: float, ground: Ground, size: SizeFn, hideouts: list[Rect],
           rng: np.random.Generator) -> F64:
    """An animal's ``n`` positions: in, through 1-4 random spots (maybe resting), out."""
    lo, hi = ground.band()
    k = int(np.clip(round(n / (fps * 5)), 1, 4))
    spots = [(rng.uniform(0.08, 0.92) * ground.width, rng.uniform(lo, hi)) for _ in range(k)]
    points = np.array([_way(ground, size, hideouts, rng), *spots,
                       _way(ground, size, hideouts, rng)], np.float64)
    curve = catmull_rom(points)
    arc = _arc(curve)
    rest = round(rng.uniform(0.2, 0.5) * n) if n >= 6 * fps and rng.random() < 0.45 else 0
    s = speed_profile(n - rest, rng) * arc[-1]
    if rest:
        s_rest = arc[int(rng.integers(1, k + 1)) * _PER_SEGMENT]  # at one of the spots
        i = int(np.searchsorted(s, s_rest))
        s = np.concatenate([s[:i], np.full(rest, s_rest), s[i:]])
    return _at(curve, arc, s)


def follow(leader: F64, spread: float, fps: float, rng: np.random.Generator) -> F64:
    """The leader's way, ``spread``-pixel offset mid-way, none at the ends (still hidden)."""
    n = len(leader)
    offset = rng.normal(0, spread, 2)
    i = np.arange(n)
    ramp = np.clip(np.minimum(i, n - 1 - i) / max(1.0, 1.5 * fps), 0, 1)
    ease = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no jerk when the offset sets in
    return np.asarray(leader + ease[:, None] * offset, np.float64)


def crossing(n: int, ground: Ground, size: SizeFn, rng: np.random.Generator,
             wobble: float = 0.15) -> F64:
    """``n`` positions from beyond one side edge to beyond the other, drifting in depth."""
    lo, hi = ground.band()
    y0 = rng.uniform(lo, hi)
    y1 = float(np.clip(y0 + rng.normal(0, 0.06 * ground.height), lo, hi))
    if rng.random() < 0.5:
        a, b = -0.6 * size(y0)[0] - 4, ground.width + 0.6 * size(y1)[0] + 4
    else:
        a, b = ground.width + 0.6 * size(y0)[0] + 4, -0.6 * size(y1)[0] - 4
    u = speed_profile(n, rng, wobble)
    return np.stack([a + (b - a) * u, y0 + (y1 - y0) * u], 1)
