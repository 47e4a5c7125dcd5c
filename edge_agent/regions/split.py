"""Splitting a moving region that holds several animals: two animals close together are
one blob of the motion mask, so without this they were one crop, one track, one count.

The blob's distance transform (each pixel's distance to the nearest still pixel) has a
peak in every body and a saddle at every neck between bodies. A peak is an animal of
its own when the saddle joining it to a higher peak is narrower than ``neck`` times its
own height: two animals that touch or overlap join through a narrow waist, while an
animal's head, legs or tail sit on its body without a dip that deep (a dilated mask
fills their necks). The peaks are found by thresholding the distance at a few levels,
highest first, and following which components merge (a coarse merge tree); the blob's
pixels then go to the nearest surviving peak along the distance surface (a
marker-based watershed), and each part's box is a region of its own.

Everything here runs on the small copy of the frame (a few thousand pixels a region),
and only on regions wide enough to hold two animals of the smallest size.

A waist is not always between two animals: with a trained model a big animal's head or
hindquarters split off its body, and the model read the piece as another animal (one
dog counted as a dog and a cat). The shape alone cannot tell (a piece of one animal is
as large a share of its region as each of two animals side by side), but the tracks can:
``rejoin`` puts back together the parts that lie in the box where one animal already
tracked is now, so a split only parts what was seen apart before, or is new.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .boxes import Box, inside, iou, union

U8 = npt.NDArray[np.uint8]
SmallBox = tuple[int, int, int, int]  # x0, y0, x1, y1 on the small copy, x1/y1 exclusive
_LEVELS = 8  # thresholds of the distance, each _STEP of the one above
_STEP = 0.8
_NEIGHBOURS = np.ones((3, 3), np.uint8)
_EDGE = 0.01  # a box this share of the frame's width from its edge touches it


def split_blob(mask: U8, box: SmallBox, min_radius: float, neck: float) -> list[SmallBox]:
    """The parts of the moving region ``box`` of ``mask`` (255 moving) that are animals of
    their own, as boxes on ``mask``; ``[box]`` when it is one. A part's peak must reach
    ``min_radius`` (pixels from its middle to its rim)."""
    x0, y0, x1, y1 = box
    if neck <= 0 or min(x1 - x0, y1 - y0) < 2 * min_radius:  # too thin for two animals
        return [box]
    # A still rim round the region: the distance is to the region's own edge there too.
    roi = cv2.copyMakeBorder(mask[y0:y1, x0:x1], 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = np.asarray(cv2.distanceTransform(roi, cv2.DIST_L2, 3), np.float32)
    # Every body's peak is a local maximum of the distance: with one group of those (most
    # regions, one animal each) there is nothing to split, and the levels are not needed.
    # Maxima a few pixels apart are one group: the discrete distance ripples along a
    # body's ridge, while two bodies' peaks lie at least two smallest radii apart.
    tops = ((dist >= min_radius) & (dist >= cv2.dilate(dist, _NEIGHBOURS))).astype(np.uint8)
    cv2.dilate(tops, _NEIGHBOURS, dst=tops, iterations=2)
    if cv2.connectedComponents(tops, connectivity=8)[0] <= 2:
        return [box]
    bodies = _bodies(dist, min_radius, neck)
    if len(bodies) < 2:
        return [box]
    parts = []
    for b in bodies:
        # The core lies ``level`` inside the body's rim all round: grow it back by that.
        grow = math.ceil(b.level)
        parts.append((max(x0, x0 + b.core[0] - 1 - grow), max(y0, y0 + b.core[1] - 1 - grow),
                      min(x1, x0 + b.core[2] - 1 + grow), min(y1, y0 + b.core[3] - 1 + grow)))
    return parts


def rejoin(parts: list[Box], known: Sequence[Box], width: int, height: int) -> list[Box]:
    """The parts of one split region, with those that belong to the same known animal
    joined into one box. A part belongs to the animal box of ``known`` (where each
    tracked animal should be now) that holds at least half of it and overlaps it most;
    a part no known box holds is an animal not seen before and stays on its own. A known
    animal at the edge of the ``width`` x ``height`` frame is still coming in (or going
    out): how far it reaches is not known, so the whole region is that animal."""
    region = parts[0]
    for part in parts[1:]:
        region = union(region, part)
    margin = _EDGE * width
    for k in known:
        if inside(k, region) >= 0.5 and (min(k[0], k[1]) <= margin or k[2] >= width - margin
                                         or k[3] >= height - margin):
            return [region]
    owner: dict[int, list[Box]] = {}
    out: list[Box] = []
    for part in parts:
        holders = [(iou(part, k), i) for i, k in enumerate(known) if inside(part, k) >= 0.5]
        if not holders:
            out.append(part)
            continue
        owner.setdefault(max(holders)[1], []).append(part)
    for pieces in owner.values():
        joined = pieces[0]
        for piece in pieces[1:]:
            joined = union(joined, piece)
        out.append(joined)
    return out


@dataclass
class _Body:
    height: float  # the peak's distance to the rim
    point: tuple[int, int]  # row, column of the peak
    core: tuple[int, int, int, int]  # x0, y0, x1, y1 of the pixels at least ``level`` in
    level: float
    grows: bool = True  # its core follows the levels down until it meets another body


def _bodies(dist: npt.NDArray[np.float32], min_radius: float, neck: float) -> list[_Body]:
    """The peaks that are bodies of their own, each with its core just above where it met
    another body (or at the lowest level)."""
    top = float(dist.max())
    if top < min_radius:
        return []
    bodies: list[_Body] = []
    level = top * _STEP
    for _ in range(_LEVELS):
        above = (dist >= level).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(above, connectivity=8)
        held: dict[int, list[_Body]] = {}
        for b in bodies:
            held.setdefault(int(labels[b.point]), []).append(b)
        for label in range(1, count):
            x, y, w, h = (int(v) for v in stats[label, :4])
            these = held.get(label, [])
            if not these:  # a new peak: this component's highest point
                r, c = np.unravel_index(int(np.argmax(np.where(labels == label, dist, 0.0))),
                                        dist.shape)
                if float(dist[r, c]) >= min_radius:
                    bodies.append(_Body(float(dist[r, c]), (int(r), int(c)),
                                        (x, y, x + w, y + h), level))
                continue
            # Joined above the neck: the lower peaks are bumps on the highest one's body.
            highest = max(these, key=lambda b: b.height)
            gone = [b for b in these if b is not highest and level > neck * b.height]
            bodies = [b for b in bodies if not any(b is g for g in gone)]
            alive = [b for b in these if not any(b is g for g in gone)]
            if len(alive) > 1:
                for b in alive:
                    b.grows = False
            elif alive[0].grows:
                alive[0].core, alive[0].level = (x, y, x + w, y + h), level
        level *= _STEP
        if level < min_radius * neck:
            break
    bodies.sort(key=lambda b: b.height, reverse=True)
    return bodies
