"""The ground truth of a park clip: the ``parkwatch-scene/1`` sidecar and questions about it.

The sidecar is a JSON file next to the video (``clip.avi`` -> ``clip.json``). It holds
the clip's geometry and seed, the schedule, the condition of every frame (as spans), one
entry per track (id, kind, label, where its picture came from) and, per frame, the visible
objects as compact rows ``[track_id, x, y, w, h, visible_fraction]`` (``object_columns``):
a track's kind and label never change, so they live in ``tracks`` once.

``box`` is the bounding box, in pixels, of the part of the object that is visible in the
frame: pixels where the object's matte is at least 0.5 and no nearer object or
foreground (a bush, a post) covers it, clipped to the frame. ``visible_fraction`` is that
pixel count over the object's whole matte at the same scale (1.0: whole and in frame).
An object with no visible pixel is not listed. The burnt-in clock is not an occluder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .timeline import Schedule

FORMAT = "parkwatch-scene/1"
ANIMAL_LABELS = ("cat", "dog")
DISTRACTOR_LABELS = ("person", "ball", "leaves", "shadow")
CONDITIONS = ("day", "dusk", "night", "ir", "rain")
OBJECT_COLUMNS = ("track_id", "x", "y", "w", "h", "visible_fraction")

Kind = Literal["animal", "distractor"]
Label = Literal["cat", "dog", "person", "ball", "leaves", "shadow"]
Condition = Literal["day", "dusk", "night", "ir", "rain"]
Source = Literal["photo", "cartoon", "drawn"]
CutoutMethod = Literal["grabcut", "ellipse"]
Box = tuple[int, int, int, int]
Row = tuple[int, int, int, int, int, float]


class FrameObject(NamedTuple):
    track_id: int
    kind: Kind
    label: Label
    box: Box  # x, y, w, h of the visible part, in pixels
    visible_fraction: float


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Track(_Model):
    track_id: int = Field(ge=1)
    kind: Kind
    label: Label
    source: Source
    photo: str | None = None  # POSIX path relative to the photo folder
    photo_sha256: str | None = None
    cutout: CutoutMethod | None = None  # how the photo was cut out
    start_frame: int  # planned presence [start, end), clipped to the clip: the object
    end_frame: int  # may be out of view or hidden for some of it

    @model_validator(mode="after")
    def _kind_matches_label(self) -> Track:
        if (self.kind == "animal") != (self.label in ANIMAL_LABELS):
            raise ValueError(f"track {self.track_id}: label {self.label!r} is no {self.kind}")
        return self


class ConditionSpan(_Model):
    condition: Condition
    severity: float = Field(ge=0.0, le=1.0)
    start_frame: int
    end_frame: int


class PhotoSource(_Model):
    """Which photos the animals came from: the folder and the split rule's parameters."""

    root: str
    split: Literal["train", "val", "test"]
    seed: int
    val_fraction: float
    test_fraction: float


class SceneTruth(_Model):
    format: Literal["parkwatch-scene/1"] = "parkwatch-scene/1"
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    frame_count: int = Field(ge=0)
    seed: int
    camera: str
    start_time: dt.datetime
    schedule: Schedule
    conditions: list[ConditionSpan]
    photos: PhotoSource | None = None
    # Where the burnt-in clock is (it changes every second: motion that is nothing).
    clock_box: Box | None = None
    tracks: list[Track]
    object_columns: tuple[str, ...] = OBJECT_COLUMNS
    frames: list[list[Row]]
    _by_id: dict[int, Track] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> SceneTruth:
        if len(self.frames) != self.frame_count:
            raise ValueError(f"{len(self.frames)} frame rows for frame_count {self.frame_count}")
        if self.object_columns != OBJECT_COLUMNS:
            raise ValueError(f"object_columns must be {list(OBJECT_COLUMNS)}")
        ids = {t.track_id for t in self.tracks}
        unknown = {row[0] for rows in self.frames for row in rows} - ids
        if unknown:
            raise ValueError(f"frames refer to unknown track ids {sorted(unknown)[:5]}")
        return self

    def model_post_init(self, context: object) -> None:
        self._by_id.update({t.track_id: t for t in self.tracks})

    # -- what is in a frame ------------------------------------------------------------

    def track(self, track_id: int) -> Track:
        return self._by_id[track_id]

    def objects(self, frame: int, kind: Kind | None = None) -> list[FrameObject]:
        """The visible objects of ``frame`` (shadows, then far to near), maybe of one kind."""
        out = []
        for tid, x, y, w, h, vis in self.frames[frame]:
            t = self._by_id[tid]
            if kind is None or t.kind == kind:
                out.append(FrameObject(tid, t.kind, t.label, (x, y, w, h), vis))
        return out

    def condition_at(self, frame: int) -> Condition:
        for span in self.conditions:
            if span.start_frame <= frame < span.end_frame:
                return span.condition
        raise IndexError(f"frame {frame} is outside the clip (0..{self.frame_count - 1})")

    # -- tracks and counts ---------------------------------------------------------------

    def track_boxes(self, track_id: int, min_visible: float = 0.0) -> dict[int, Box]:
        """The ground-truth track: frame -> visible box, for the frames it is seen in."""
        self.track(track_id)  # a KeyError for an unknown id, not an empty track
        return {k: (x, y, w, h) for k, rows in enumerate(self.frames)
                for tid, x, y, w, h, vis in rows if tid == track_id and vis >= min_visible}

    def visible_tracks(self, start: int, end: int, kind: Kind | None = None,
                       min_visible: float = 0.0) -> set[int]:
        """Ids of the tracks visible (at least ``min_visible``) in some frame of [start, end)."""
        return {tid for rows in self.frames[max(0, start):end]
                for tid, *_, vis in rows
                if vis >= min_visible and (kind is None or self._by_id[tid].kind == kind)}

    def animal_counts(self, start: int, end: int, min_visible: float = 0.0) -> dict[str, int]:
        """Distinct animals per class visible in frames [start, end) (every class listed)."""
        counts = dict.fromkeys(ANIMAL_LABELS, 0)
        for tid in self.visible_tracks(start, end, "animal", min_visible):
            counts[self._by_id[tid].label] += 1
        return counts

    def windows(self, seconds: float) -> list[tuple[int, int]]:
        """[start, end) frame ranges of consecutive ``seconds``-long windows (last one short)."""
        step = max(1, round(seconds * self.fps))
        return [(a, min(a + step, self.frame_count)) for a in range(0, self.frame_count, step)]

    # -- empty time ----------------------------------------------------------------------

    def _has(self, frame: int, kind: Kind) -> bool:
        return any(self._by_id[row[0]].kind == kind for row in self.frames[frame])

    def frames_without_animals(self) -> list[int]:
        return [k for k in range(self.frame_count) if not self._has(k, "animal")]

    def empty_share(self) -> float:
        """Share of frames with no animal visible (0.0 for a clip without frames)."""
        return len(self.frames_without_animals()) / self.frame_count if self.frame_count else 0.0

    def _stretches(self, keep: Callable[[int], bool], min_frames: int) -> list[tuple[int, int]]:
        out, start = [], None
        for k in range(self.frame_count + 1):
            if k < self.frame_count and keep(k):
                start = k if start is None else start
            elif start is not None:
                if k - start >= min_frames:
                    out.append((start, k))
                start = None
        return out

    def empty_stretches(self, min_frames: int = 1) -> list[tuple[int, int]]:
        """Maximal [start, end) runs of frames with no animal (distractors allowed)."""
        return self._stretches(lambda k: not self._has(k, "animal"), min_frames)

    def distractor_only_stretches(self, min_frames: int = 1) -> list[tuple[int, int]]:
        """Maximal [start, end) runs where something moves but it is never an animal."""
        return self._stretches(
            lambda k: self._has(k, "distractor") and not self._has(k, "animal"), min_frames)

    # -- files ---------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the sidecar atomically: a reader sees the old file or the whole new one."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(self.model_dump_json())
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> SceneTruth:
        """Read a sidecar; a ValueError saying what is wrong if it is not a scene sidecar."""
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read the scene sidecar {path}: {exc.strerror}") from None
        fix = "write it with scripts/park_clip.py"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a {FORMAT} sidecar (not JSON: {exc.msg}); "
                             f"{fix}") from None
        found = data.get("format") if isinstance(data, dict) else None
        if found != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} sidecar (its format is {found!r}; "
                             f"close-up clips have a segments sidecar); {fix}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "file"
            raise ValueError(f"{path} is a broken {FORMAT} sidecar ({where}: {first['msg']}); "
                             f"{fix}") from None


def sidecar_path(video: Path) -> Path:
    """Where the ground truth of ``video`` lives: same name, ``.json``."""
    return Path(video).with_suffix(".json")
