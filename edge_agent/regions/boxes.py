"""Boxes in frame pixels: overlap, merging nearby parts, and the square crop around one.

A box is ``(x0, y0, x1, y1)`` in pixels of the full frame, ``x1 > x0``, ``y1 > y0``.
Plain tuples: a frame has a handful of boxes, and tuples cost least to make.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Box = tuple[float, float, float, float]


def area(b: Box) -> float:
    return (b[2] - b[0]) * (b[3] - b[1])


def centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0


def iou(a: Box, b: Box) -> float:
    """Intersection over union (0 when apart)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / (area(a) + area(b) - inter)


def inside(a: Box, b: Box) -> float:
    """The fraction of ``a``'s area that lies in ``b``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h / area(a) if w > 0 and h > 0 else 0.0


def centre_distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = centre(a), centre(b)
    return math.hypot(ax - bx, ay - by)


def near(a: Box, b: Box, distance: float) -> bool:
    """True when the gap between ``a`` and ``b`` is at most ``distance`` on both axes."""
    return (max(a[0], b[0]) - min(a[2], b[2]) <= distance
            and max(a[1], b[1]) - min(a[3], b[3]) <= distance)


def union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def merge_near(boxes: Sequence[Box], distance: float) -> list[Box]:
    """Union every group of boxes that touch within ``distance``, until none is left near
    another (a union may reach a box its parts did not)."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        out: list[Box] = []
        for box in merged:
            for i, kept in enumerate(out):
                if near(box, kept, distance):
                    out[i] = union(box, kept)
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return merged


def square_around(b: Box, context: float) -> Box:
    """The square on ``b``'s longer side, grown by ``context`` of that side on every edge,
    centred on ``b`` (it may leave the frame: the crop pads there)."""
    cx, cy = centre(b)
    half = max(b[2] - b[0], b[3] - b[1]) * (0.5 + context)
    return cx - half, cy - half, cx + half, cy + half


def normalised(b: Box, width: int, height: int) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` as fractions of the frame, clipped to it (the wire's box)."""
    x0, y0 = min(max(b[0] / width, 0.0), 1.0), min(max(b[1] / height, 0.0), 1.0)
    x1, y1 = min(max(b[2] / width, 0.0), 1.0), min(max(b[3] / height, 0.0), 1.0)
    return x0, y0, x1 - x0, y1 - y0
