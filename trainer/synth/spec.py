"""What a park clip should look like: size, length, seed, schedule, conditions, sources."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from .groundtruth import ANIMAL_LABELS, CONDITIONS
from .photos import PhotoPool
from .timeline import Schedule
from .video import EPOCH

MIN_SIZE, MAX_SIZE = (64, 48), 4096


@dataclass(frozen=True)
class SceneSpec:
    """A park clip, deterministic for its ``seed``.

    ``photos`` None draws cartoon animals; a :class:`PhotoPool` films cut-outs of its
    photos (by default the trainer's test split: held out from training), each label's in
    the pool's order from its ``photo_start``-th on (wrapping): clips that start apart
    film different photos, clips that start alike the same first ones. ``conditions``
    split the clip into equal consecutive spans (``("day", "dusk", "night")``: dusk falls);
    ``severity`` applies to every non-day span. ``flat_background``, ``noise``,
    ``light_drift``, ``shake`` and ``timestamp`` exist so tests can see objects bare.
    """

    width: int = 640
    height: int = 480
    fps: float = 10.0
    seconds: float = 60.0
    seed: int = 0
    schedule: Schedule = field(default_factory=Schedule)
    conditions: tuple[str, ...] = ("day",)
    severity: float = 0.8
    labels: tuple[str, ...] = ANIMAL_LABELS
    photos: PhotoPool | None = None
    photo_start: int = 0
    cutout_cache: Path | None = None
    noise: bool = True
    light_drift: bool = True
    shake: bool = True
    timestamp: bool = True
    flat_background: tuple[int, int, int] | None = None
    camera: str | None = None  # burnt-in name; default CAM-<seed % 100>
    start_time: dt.datetime = EPOCH

    def __post_init__(self) -> None:
        if not (MIN_SIZE[0] <= self.width <= MAX_SIZE and MIN_SIZE[1] <= self.height <= MAX_SIZE):
            raise ValueError(f"frame size must be between {MIN_SIZE[0]}x{MIN_SIZE[1]} and "
                             f"{MAX_SIZE}x{MAX_SIZE} pixels, got {self.width}x{self.height}")
        if not 0 < self.fps <= 120:
            raise ValueError(f"fps must be in (0, 120], got {self.fps}")
        if not 0 < self.seconds <= 24 * 3600:
            raise ValueError(f"seconds must be in (0, 86400], got {self.seconds}")
        if not self.conditions:
            raise ValueError("conditions must not be empty, e.g. day or day,dusk,night")
        for c in self.conditions:
            if c not in CONDITIONS:
                raise ValueError(f"unknown condition {c!r}; expected one of "
                                 f"{', '.join(CONDITIONS)}")
        if self.photo_start < 0:
            raise ValueError(f"photo_start must be >= 0, got {self.photo_start}")
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {self.severity}")
        if not self.labels or set(self.labels) - set(ANIMAL_LABELS):
            raise ValueError(f"labels must be a non-empty subset of {', '.join(ANIMAL_LABELS)},"
                             f" got {', '.join(self.labels) or 'none'}")

    @property
    def frame_count(self) -> int:
        return max(1, round(self.seconds * self.fps))

    @property
    def camera_name(self) -> str:
        return self.camera or f"CAM-{self.seed % 100:02d}"
