"""The scene composer: a park camera's clip with exact per-frame ground truth.

A fixed camera watches a park (:mod:`.backdrop`); animals come and go in episodes with
long empty stretches between them (:mod:`.timeline`), walking, resting, overlapping and
passing behind the bush in front (:mod:`.motion`, :mod:`.actors`); walkers, balls,
leaves and cloud shadows cross the view as distractors. Each frame is composed from
sprites pasted at integer positions (only their boxes are touched), then the camera adds
the light of the moment and noise (:mod:`.conditions`) and the burnt-in clock.

Frame ``k`` depends only on the spec and ``k``, so frames can be rendered in any order,
and the ground truth can be computed without rendering pixels (:func:`scene_truth`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ._draw import F32, U8
from .actors import Actor, Placement
from .backdrop import Backdrop, flat_backdrop, park_backdrop
from .cast import cast
from .conditions import CameraLook, spans_for
from .groundtruth import FrameObject, PhotoSource, Row, SceneTruth, Track, sidecar_path
from .spec import SceneSpec
from .sprites import OPAQUE, clip_box, paste
from .video import burn_in, burn_in_box, open_writer, stamp_text

Item = tuple[int, int, int, F32, int]  # track id, x, y (frame pixels), matte, opaque area


@dataclass(frozen=True)
class SceneFrame:
    index: int
    image: U8  # H x W x 3 BGR, as the camera delivers it
    condition: str
    objects: list[FrameObject]  # visible objects: shadows, then far to near


def visible_rows(items: Sequence[Item], cover: NDArray[np.bool_] | None, width: int,
                 height: int) -> list[Row]:
    """Rows ``(track_id, x, y, w, h, visible_fraction)`` of items drawn far to near.

    A pixel belongs to an item where its matte is >= OPAQUE and no later item's matte
    nor ``cover`` (the foreground, frame-sized) is; items with no such pixel are left out.
    """
    clipped: list[tuple[tuple[int, ...], NDArray[np.bool_]] | None] = []
    for _, x, y, alpha, _ in items:
        box = clip_box(x, y, alpha.shape[1], alpha.shape[0], width, height)
        if box is None:
            clipped.append(None)
            continue
        x0, y0, x1, y1 = box
        clipped.append((box, alpha[y0 - y:y1 - y, x0 - x:x1 - x] >= OPAQUE))
    rows: list[Row] = []
    for i, ((tid, *_, area), mine) in enumerate(zip(items, clipped, strict=True)):
        if mine is None:
            continue
        (x0, y0, x1, y1), seen = mine[0], mine[1].copy()
        for later in clipped[i + 1:]:
            if later is None:
                continue
            (a0, b0, a1, b1), theirs = later
            ox0, oy0, ox1, oy1 = max(x0, a0), max(y0, b0), min(x1, a1), min(y1, b1)
            if ox0 < ox1 and oy0 < oy1:
                seen[oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0] &= \
                    ~theirs[oy0 - b0:oy1 - b0, ox0 - a0:ox1 - a0]
        if cover is not None:
            seen &= ~cover[y0:y1, x0:x1]
        count = int(np.count_nonzero(seen))
        if count == 0:
            continue
        cols, lines = np.flatnonzero(seen.any(axis=0)), np.flatnonzero(seen.any(axis=1))
        rows.append((tid, x0 + int(cols[0]), y0 + int(lines[0]), int(cols[-1] - cols[0] + 1),
                     int(lines[-1] - lines[0] + 1), max(0.001, round(count / max(1, area), 3))))
    return rows


def _shake(n: int, fps: float, seed: int) -> NDArray[np.int64]:
    """Integer camera offsets (dx, dy) per frame: a slow sway plus wind jitter, |.| <= 2."""
    rng = np.random.default_rng([seed, 4])
    t = np.arange(n)[:, None] / fps
    sway = 1.2 * np.sin(2 * np.pi * t / rng.uniform(2, 5, 2) + rng.uniform(0, 6, 2))
    return np.clip(np.rint(sway + rng.normal(0, 0.4, (n, 2))), -2, 2).astype(np.int64)


class Scene:
    """A planned clip: ``render(k)`` and ``frames()`` give pictures and their truth."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        w, h, n = spec.width, spec.height, spec.frame_count
        self.backdrop: Backdrop = (
            flat_backdrop(spec.flat_background, w, h) if spec.flat_background is not None
            else park_backdrop(np.random.default_rng([spec.seed, 0]), w, h))
        self.actors: list[Actor] = cast(spec, self.backdrop)
        self.spans = spans_for(spec.conditions, spec.severity, n)
        self.look = CameraLook(self.spans, w, h, spec.fps, spec.seed, spec.noise,
                               spec.light_drift)
        self.offsets: list[tuple[int, int]] = (
            [(int(x), int(y)) for x, y in _shake(n, spec.fps, spec.seed)] if spec.shake
            else [(0, 0)] * n)
        fg = self.backdrop.fg_alpha
        self._cover = None if fg is None else np.asarray(fg >= OPAQUE)
        self._by_id = {a.track_id: a for a in self.actors}

    @property
    def frame_count(self) -> int:
        return self.spec.frame_count

    def _layout(self, k: int) -> tuple[list[Placement], list[Placement], list[int], list[int]]:
        """Placements of frame ``k``: bodies far to near, shadows; and their track ids."""
        ir = self.look.is_ir(k)
        bodies: list[tuple[float, int, Placement]] = []
        shadows: list[tuple[int, Placement]] = []
        for a in self.actors:
            if a.start <= k < a.end and (p := a.place(k, ir)) is not None:
                if p.darken > 0:
                    shadows.append((a.track_id, p))
                else:
                    bodies.append((p.depth, a.track_id, p))
        bodies.sort(key=lambda b: (b[0], b[1]))
        return ([b[2] for b in bodies], [s[1] for s in shadows], [b[1] for b in bodies],
                [s[0] for s in shadows])

    def _rows(self, k: int, bodies: list[Placement], shadows: list[Placement],
              body_ids: list[int], shadow_ids: list[int]) -> list[Row]:
        (dx, dy), pad, w, h = self.offsets[k], self.backdrop.pad, self.spec.width, self.spec.height
        cover = None
        if self._cover is not None:
            cover = self._cover[pad - dy:pad - dy + h, pad - dx:pad - dx + w]
        items = [(tid, p.x + dx, p.y + dy, p.sprite.alpha, p.sprite.area)
                 for tid, p in zip(body_ids, bodies, strict=True)]
        rows = visible_rows(items, cover, w, h)
        for tid, p in zip(shadow_ids, shadows, strict=True):  # on the ground: nothing hides them
            rows[:0] = visible_rows([(tid, p.x + dx, p.y + dy, p.sprite.alpha, p.sprite.area)],
                                    None, w, h)
        return rows

    def _compose(self, k: int, bodies: list[Placement], shadows: list[Placement]) -> U8:
        (dx, dy), pad, w, h = self.offsets[k], self.backdrop.pad, self.spec.width, self.spec.height
        bd = self.backdrop
        frame = np.ascontiguousarray(bd.image[pad - dy:pad - dy + h, pad - dx:pad - dx + w])
        for p in bodies:
            paste(frame, p.sprite.bgr, p.sprite.alpha, p.x + dx, p.y + dy)
        if bd.fg_bgr is not None and bd.fg_alpha is not None:
            for x0, y0, x1, y1 in bd.fg_boxes:
                paste(frame, bd.fg_bgr[y0:y1, x0:x1], bd.fg_alpha[y0:y1, x0:x1],
                      x0 - pad + dx, y0 - pad + dy)
        for p in shadows:  # a cloud's shadow darkens whatever it falls on
            a = p.sprite.alpha
            box = clip_box(p.x + dx, p.y + dy, a.shape[1], a.shape[0], w, h)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            sx, sy = x0 - (p.x + dx), y0 - (p.y + dy)
            keep = np.ascontiguousarray(1.0 - p.darken * a[sy:sy + y1 - y0, sx:sx + x1 - x0])
            roi = frame[y0:y1, x0:x1]
            roi[:] = cv2.blendLinear(np.ascontiguousarray(roi), np.zeros_like(roi), keep,
                                     1.0 - keep)
        return frame

    def objects(self, rows: list[Row]) -> list[FrameObject]:
        return [FrameObject(tid, self._by_id[tid].kind, self._by_id[tid].label, (x, y, bw, bh),
                            vis) for tid, x, y, bw, bh, vis in rows]

    def rows(self, k: int) -> list[Row]:
        """The ground truth of frame ``k`` alone (no pixels rendered)."""
        return self._rows(k, *self._layout(k))

    def render(self, k: int) -> SceneFrame:
        if not 0 <= k < self.frame_count:
            raise IndexError(f"frame {k} is outside the clip (0..{self.frame_count - 1})")
        bodies, shadows, body_ids, shadow_ids = self._layout(k)
        frame = self._compose(k, bodies, shadows)
        frame = self.look.apply(frame, k, np.random.default_rng([self.spec.seed, 9, k]))
        if self.spec.timestamp:
            burn_in(frame, stamp_text(self.spec.camera_name, self.spec.start_time,
                                      k / self.spec.fps))
        rows = self._rows(k, bodies, shadows, body_ids, shadow_ids)
        span = self.spans[self.look.span_at(k)]
        return SceneFrame(k, frame, span.condition, self.objects(rows))

    def frames(self, start: int = 0, end: int | None = None) -> Iterator[SceneFrame]:
        """Frames [start, end) in order: pictures and per-frame truth, no files."""
        for k in range(start, self.frame_count if end is None else end):
            yield self.render(k)

    def truth(self, frames: list[list[Row]]) -> SceneTruth:
        """The sidecar of this clip, given the rows of all its frames."""
        spec, n = self.spec, self.frame_count
        pool = spec.photos
        photos = None if pool is None else PhotoSource(
            root=str(pool.root), split=pool.split, seed=pool.seed,
            val_fraction=pool.val_fraction, test_fraction=pool.test_fraction)
        tracks = [Track(track_id=a.track_id, kind=a.kind, label=a.label,
                        source=a.source, photo=a.photo, photo_sha256=a.photo_sha256,
                        cutout=a.cutout,
                        start_frame=max(0, a.start), end_frame=min(n, a.end))
                  for a in self.actors]
        clock = None
        if spec.timestamp:
            x, y, w, h = burn_in_box(spec.height, stamp_text(spec.camera_name, spec.start_time, 0))
            clock = (x, y, min(w, spec.width - x), h)
        return SceneTruth(fps=spec.fps, width=spec.width, height=spec.height, frame_count=n,
                          seed=spec.seed, camera=spec.camera_name, start_time=spec.start_time,
                          schedule=spec.schedule, conditions=self.spans, photos=photos,
                          clock_box=clock, tracks=tracks, frames=frames)


def rows_of(frame: SceneFrame) -> list[Row]:
    return [(o.track_id, *o.box, o.visible_fraction) for o in frame.objects]


def scene_truth(spec: SceneSpec) -> SceneTruth:
    """The ground truth of the clip ``spec`` describes, without rendering its pixels."""
    scene = Scene(spec)
    return scene.truth([scene.rows(k) for k in range(scene.frame_count)])


def write_clip(out_path: Path, spec: SceneSpec) -> SceneTruth:
    """Write the clip as MJPG ``.avi`` at ``out_path`` and its sidecar next to it."""
    out_path = Path(out_path)
    scene = Scene(spec)
    writer = open_writer(out_path, spec.fps, spec.width, spec.height)
    rows: list[list[Row]] = []
    try:
        for frame in scene.frames():
            writer.write(frame.image)
            rows.append(rows_of(frame))
    finally:
        writer.release()
    truth = scene.truth(rows)
    truth.save(sidecar_path(out_path))
    return truth
