"""When things are in view: the schedule of a clip and the plan of its tracks' intervals.

A clip alternates empty stretches with *episodes*: a group of one to ``max_group``
animals comes into view, some following a leader (a chase, a walk together), and leaves.
The episode lengths add up to ``1 - empty_share`` of the clip, so the share of frames
without an animal is close to ``empty_share`` (a bit above: an animal takes a moment to
walk in from beyond the edge). Distractors come and go independently of the animals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

DISTRACTOR_KINDS = ("person", "ball", "leaves", "shadow")
_DISTRACTOR_ODDS = (0.4, 0.2, 0.25, 0.15)
# Seconds a distractor stays (a walker crosses, a ball rolls by, a cloud drifts over).
_DISTRACTOR_SECONDS = {"person": (7.0, 14.0), "ball": (2.0, 5.0), "leaves": (3.0, 7.0),
                       "shadow": (15.0, 40.0)}
MIN_EPISODE_SECONDS = 4.0


class Schedule(BaseModel):
    """How busy a clip is: the share of time without animals, and arrival rates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    empty_share: float = Field(0.5, ge=0.0, le=1.0,
                               description="share of frames with no animal in view")
    animals_per_minute: float = Field(3.0, ge=0.0, le=120.0)
    distractors_per_minute: float = Field(2.0, ge=0.0, le=120.0)
    max_group: int = Field(3, ge=1, le=8, description="most animals in view together")


@dataclass(frozen=True)
class AnimalSlot:
    """One animal's interval [start, end); a follower trails ``leader`` by ``lag`` frames."""

    start: int
    end: int
    leader: int | None = None  # index of the slot it follows
    lag: int = 0


@dataclass(frozen=True)
class DistractorSlot:
    kind: str
    start: int  # may be negative (already in view when the clip starts)
    end: int  # may pass the clip's end


def _split(total: int, parts: int, floor: int, rng: np.random.Generator) -> list[int]:
    """``parts`` random integers, each >= ``floor``, summing to ``total``."""
    if parts == 0:
        return []
    spare = max(0, total - floor * parts)
    weights = rng.dirichlet(np.full(parts, 2.0))
    sizes = [floor + int(v) for v in np.floor(weights * spare)]
    sizes[int(np.argmax(weights))] += total - sum(sizes)  # rounding remainder
    return sizes


def _groups(n_animals: int, max_group: int, rng: np.random.Generator) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < n_animals:
        sizes.append(int(rng.integers(1, min(max_group, n_animals - sum(sizes)) + 1)))
    return sizes


def _episode(start: int, end: int, size: int, first_index: int, fps: float,
             rng: np.random.Generator) -> list[AnimalSlot]:
    """Slots of one group in view during [start, end): the first animal leads."""
    length = end - start
    lags = [int(rng.uniform(0.4, 1.5) * fps) if rng.random() < 0.6 else -1
            for _ in range(size - 1)]
    max_lag = max([lag for lag in lags if lag >= 0], default=0)
    slots = [AnimalSlot(start, max(start + 1, end - max_lag))]
    for lag in lags:
        if lag >= 0:  # follows the leader: in view while it is, a little later
            slots.append(AnimalSlot(start + lag, slots[0].end + lag, first_index, lag))
        else:  # its own way through the scene while the group is there
            a = start + int(rng.uniform(0, 0.3) * length)
            b = end - int(rng.uniform(0, 0.3) * length)
            slots.append(AnimalSlot(a, max(a + 1, b)))
    return slots


def plan_animals(n_frames: int, fps: float, schedule: Schedule,
                 rng: np.random.Generator) -> list[AnimalSlot]:
    """The animals' intervals: ``animals_per_minute`` of them in episodes over the clip."""
    n_animals = round(schedule.animals_per_minute * n_frames / fps / 60)
    busy = round((1.0 - schedule.empty_share) * n_frames)
    if n_animals == 0 or busy == 0:
        return []
    min_len = min(busy, max(1, round(MIN_EPISODE_SECONDS * fps)))
    sizes = _groups(n_animals, schedule.max_group, rng)
    while len(sizes) > 1 and busy < len(sizes) * min_len:
        last = sizes.pop()  # too little time for this many episodes: merge groups
        sizes[-1] += last
    lengths = _split(busy, len(sizes), min_len, rng)
    gaps = _split(n_frames - busy, len(sizes) + 1, 0, rng)
    slots: list[AnimalSlot] = []
    t = 0
    for size, length, gap in zip(sizes, lengths, gaps, strict=False):
        t += gap
        slots += _episode(t, t + length, size, len(slots), fps, rng)
        t += length
    return slots


def plan_distractors(n_frames: int, fps: float, schedule: Schedule,
                     rng: np.random.Generator) -> list[DistractorSlot]:
    """Distractors at ``distractors_per_minute``, each kind with its own duration."""
    count = round(schedule.distractors_per_minute * n_frames / fps / 60)
    slots = []
    for _ in range(count):
        kind = str(rng.choice(DISTRACTOR_KINDS, p=_DISTRACTOR_ODDS))
        lo, hi = _DISTRACTOR_SECONDS[kind]
        length = max(2, round(rng.uniform(lo, hi) * fps))
        start = int(rng.integers(-length // 2, max(1 - length // 2, n_frames - length // 2)))
        slots.append(DistractorSlot(kind, start, start + length))
    return slots
