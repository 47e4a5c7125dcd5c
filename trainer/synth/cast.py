"""The cast of a clip: every track, with its picture, size and way through the scene.

Each track draws from its own random stream (seeded by the clip's seed and the track's
index), so changing the number of distractors leaves the animals where they were.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from .actors import (
    MAX_WIDTH,
    Actor,
    AnimalActor,
    BallActor,
    LeavesActor,
    ShadowActor,
    WalkerActor,
    animal_width,
    facing,
    walker_height,
)
from .backdrop import Backdrop, Ground
from .cartoon import animal_layer
from .cutout import CutoutCache
from .figures import LeafCluster, ball_sprite, shadow_matte, walker_poses
from .groundtruth import ANIMAL_LABELS, DISTRACTOR_LABELS, CutoutMethod, Kind, Label, Source
from .motion import F64, SizeFn, crossing, follow, wander
from .photos import Photo
from .spec import SceneSpec
from .sprites import Sprite
from .timeline import AnimalSlot, DistractorSlot, plan_animals, plan_distractors

_NEAR = (0.14, 0.40)  # an animal's width at the bottom edge (share of frame width)


class SourceInfo(TypedDict, total=False):
    source: Source
    photo: str
    photo_sha256: str
    cutout: CutoutMethod


class _Common(TypedDict):
    kind: Kind
    label: Label
    start: int
    end: int


def _label(name: str) -> Label:
    if name not in ANIMAL_LABELS + DISTRACTOR_LABELS:
        raise ValueError(f"unknown label {name!r}")
    return name  # type: ignore[return-value]


class _Sources:
    """Pictures of animals: cartoons, or cut-outs of the pool's photos, each used once
    before any is used again."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        self.pools: dict[str, list[Photo]] = {}
        self.used: dict[str, int] = {}
        self.cache = CutoutCache(spec.cutout_cache)
        # Big enough that the largest animal is drawn, not upscaled (cartoon fills ~55 %).
        self.canvas = int(np.clip(MAX_WIDTH * spec.width / 0.55, 64, 1400))
        if spec.photos is not None:  # a wrong folder fails now, even if no animal comes
            for label in spec.labels:
                self._pool(label)

    def _pool(self, label: str) -> list[Photo]:
        pool = self.spec.photos
        assert pool is not None
        if label not in self.pools:
            photos = pool.photos(label)
            if not photos:
                raise ValueError(f"no {label} photos in the {pool.split} split of {pool.root}; "
                                 "add photos or choose another split")
            self.pools[label], self.used[label] = photos, self.spec.photo_start
        return self.pools[label]

    def sprite(self, label: str, rng: np.random.Generator) -> tuple[Sprite, SourceInfo]:
        if self.spec.photos is None:
            layer, alpha = animal_layer(label, rng, self.canvas)
            return Sprite(np.clip(layer, 0, 255).astype(np.uint8), alpha), {"source": "cartoon"}
        pool = self._pool(label)
        photo = pool[self.used[label] % len(pool)]
        self.used[label] += 1
        cut = self.cache.get(photo.path, photo.sha256)
        info: SourceInfo = {"source": "photo", "photo": photo.rel_path,
                            "photo_sha256": photo.sha256, "cutout": cut.method}
        return Sprite(cut.bgr, cut.alpha), info


def _size_fn(ground: Ground, near: float, sprite: Sprite) -> SizeFn:
    def size(y: float) -> tuple[float, float]:
        w = animal_width(ground, near, y)
        return w, w * sprite.height / sprite.opaque_width
    return size


def _paths(spec: SceneSpec, slots: list[AnimalSlot], sizes: list[SizeFn], backdrop: Backdrop,
           rngs: list[np.random.Generator]) -> list[F64]:
    """Leaders (and loners) wander; followers trail their leader at an offset."""
    ground, paths = backdrop.ground, list[F64]()
    for i, (slot, rng) in enumerate(zip(slots, rngs, strict=True)):
        if slot.leader is not None:
            w = sizes[i](ground.height)[0]
            paths.append(follow(paths[slot.leader], 0.25 * w, spec.fps, rng))
            continue
        group = [i] + [j for j, s in enumerate(slots) if s.leader == i]

        def widest(y: float, group: list[int] = group) -> tuple[float, float]:
            # Enter and leave hidden for the biggest animal that follows this path.
            ws, hs = zip(*(sizes[j](y) for j in group), strict=True)
            return max(ws), max(hs)
        paths.append(wander(slot.end - slot.start, spec.fps, ground, widest, backdrop.hideouts,
                            rng))
    return paths


def _animals(spec: SceneSpec, slots: list[AnimalSlot], backdrop: Backdrop) -> list[Actor]:
    ground, sources = backdrop.ground, _Sources(spec)
    rngs = [np.random.default_rng([spec.seed, 10, i]) for i in range(len(slots))]
    drawn: list[tuple[Label, Sprite, float, SourceInfo]] = []
    for rng in rngs:
        label = _label(str(rng.choice(spec.labels)))
        sprite, info = sources.sprite(label, rng)
        drawn.append((label, sprite, float(rng.uniform(*_NEAR)), info))
    sizes = [_size_fn(ground, near, sprite) for _, sprite, near, _ in drawn]
    paths = _paths(spec, slots, sizes, backdrop, rngs)
    return [AnimalActor(kind="animal", label=label, start=slot.start,
                        end=slot.start + len(path), sprite=sprite, near=near, xy=path,
                        ground=ground, mirrored=facing(path, rng), **info)
            for (label, sprite, near, info), slot, path, rng
            in zip(drawn, slots, paths, rngs, strict=True)]


def _distractor(spec: SceneSpec, slot: DistractorSlot, ground: Ground,
                rng: np.random.Generator) -> Actor:
    n, w, h = slot.end - slot.start, ground.width, ground.height
    u = np.linspace(0, 1, n)
    common = _Common(kind="distractor", label=_label(slot.kind), start=slot.start, end=slot.end)
    if slot.kind == "person":
        near = rng.uniform(0.55, 0.8)
        poses = walker_poses(rng, max(16, round(near * h)))

        def body(y: float) -> tuple[float, float]:
            return 0.3 * walker_height(ground, near, y), walker_height(ground, near, y)
        xy = crossing(n, ground, body, rng, wobble=0.1)
        return WalkerActor(poses=poses, near=near, xy=xy, ground=ground, **common)
    if slot.kind == "ball":
        near = rng.uniform(0.025, 0.045)
        xy = crossing(n, ground, lambda y: (near * w, near * w), rng, wobble=0.2)
        hop = (rng.uniform(0.04, 0.1) * h * np.abs(np.sin(np.pi * rng.uniform(2, 6) * u))
               * np.exp(-rng.uniform(0.5, 2.0) * u))
        return BallActor(sprite=ball_sprite(rng), near=near, xy=xy, hop=hop, ground=ground,
                         **common)
    if slot.kind == "leaves":
        cluster = LeafCluster(rng, int(rng.integers(5, 13)), 0.025 * w, max(2.0, 0.008 * w))
        xy = crossing(n, ground, lambda y: (0.1 * w, 0.1 * w), rng, wobble=0.4)
        lift = 0.02 * h * (1.5 + np.sin(2 * np.pi * rng.uniform(1, 3) * u + rng.uniform(0, 6)))
        return LeavesActor(cluster=cluster, xy=xy, lift=lift, ground=ground, fps=spec.fps,
                           **common)
    sw, sh = int(rng.uniform(0.5, 0.9) * w), int(rng.uniform(0.35, 0.6) * h)
    return ShadowActor(matte=shadow_matte(rng, sw, sh), strength=rng.uniform(0.3, 0.45),
                       xy=crossing(n, ground, lambda y: (sw, sh), rng, wobble=0.05),
                       ground=ground, **common)


def cast(spec: SceneSpec, backdrop: Backdrop) -> list[Actor]:
    """Every track of the clip, with ids 1, 2, ... in order of entrance (animals first on
    a tie)."""
    n = spec.frame_count
    slots = plan_animals(n, spec.fps, spec.schedule, np.random.default_rng([spec.seed, 1]))
    actors = _animals(spec, slots, backdrop)
    for j, dslot in enumerate(plan_distractors(n, spec.fps, spec.schedule,
                                               np.random.default_rng([spec.seed, 2]))):
        actors.append(_distractor(spec, dslot, backdrop.ground,
                                  np.random.default_rng([spec.seed, 20, j])))
    order = sorted(range(len(actors)), key=lambda i: (max(0, actors[i].start),
                                                      actors[i].kind != "animal", i))
    for track_id, i in enumerate(order, start=1):
        actors[i].track_id = track_id
    return [actors[i] for i in order]
