"""Candidate negatives: crops of this camera's own background and distractors.

A regions model learns its "other" class from generated park clips; a real camera has
its own lawn, fence, bins, shadows and people. With samples opted in, the agent offers
the control plane a few crops an hour that it thinks show no animal, tagged with where
they came from (``protocols.NegativeSource``); an operator confirms them as "other" (or
relabels one that shows an animal) and the next dataset version trains on them.

- ``rejected``: a crop the model gave a background label;
- ``track``: a crop of a confirmed track that has not become an animal (a walker, a
  ball, a moving shadow whose crops the model is unsure of);
- ``background``: a random square of a frame in which nothing moves and no track lives,
  classified on its own. At full resolution: the background model's own image is the
  160 px analysis copy, too coarse for a crop.

A crop held by an animal's track is never offered. The sink is asked first
(``wants_negative``: a token in its bucket), so on almost every frame this costs one
check and nothing is cut, copied or classified.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from protocols import NegativeSource

from ..runtime import CropResults, Inference, ModelRuntime
from .analyzer import RegionAnalyzer
from .boxes import Box

U8 = npt.NDArray[np.uint8]
WARMUP_FRAMES = 20  # frames before the background model is trusted to say "nothing moves"
SIDE_RANGE = (0.05, 0.4)  # a background square's side, as a share of the frame's width


class NegativeSink(Protocol):
    """Takes candidate negatives (``edge_agent.samples.SampleUploader``)."""

    def wants_negative(self, background: bool) -> bool: ...

    def offer_negative(self, camera_id: str, image: U8, result: Inference,
                       runtime: ModelRuntime, source: NegativeSource) -> None: ...


def distractor_crops(analyzer: RegionAnalyzer, runtime: ModelRuntime,
                     results: CropResults) -> list[tuple[int, NegativeSource]]:
    """The last frame's crops that show no animal, by what says so (see the module doc)."""
    tracker = analyzer.tracker
    out: list[tuple[int, NegativeSource]] = []
    for i, (box, top) in enumerate(zip(analyzer.boxes, results.tops, strict=True)):
        # The tracker keeps the crop's own box object on the track that took it.
        track = next((t for t in tracker.tracks if t.box is box), None)
        if track is None or tracker.is_animal(track):
            continue
        if runtime.labels[top] in tracker.background:
            out.append((i, "rejected"))
        elif track.confirmed:
            out.append((i, "track"))
    return out


def background_box(rng: np.random.Generator, width: int, height: int) -> Box:
    """A square of the frame, its side log-uniform in ``SIDE_RANGE`` of the width."""
    lo, hi = SIDE_RANGE
    side = min(width * math.exp(rng.uniform(math.log(lo), math.log(hi))), height)
    x = rng.uniform(0, width - side)
    y = rng.uniform(0, height - side)
    return (x, y, x + side, y + side)


class NegativeMiner:
    """Offers one camera's candidate negatives to a sink, one at most per frame."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, sink: NegativeSink, camera_id: str, analyzer: RegionAnalyzer,
                 bgr: U8, runtime: ModelRuntime, results: CropResults | None) -> None:
        """After ``analyzer.analyse(bgr)`` gave ``results``; raises what the model raises."""
        if results is not None:
            if not sink.wants_negative(False):
                return
            found = distractor_crops(analyzer, runtime, results)
            if found:
                i, source = found[int(self._rng.integers(len(found)))]
                sink.offer_negative(camera_id, results.images[i], results.inference(i),
                                    runtime, source)
            return
        quiet = (not analyzer.tracker.tracks and analyzer.motion.moving_fraction == 0.0
                 and analyzer.frames >= WARMUP_FRAMES)
        if quiet and sink.wants_negative(True):
            height, width = bgr.shape[:2]
            crop = runtime.classify_crops(analyzer.cut(bgr, [background_box(
                self._rng, width, height)]))
            sink.offer_negative(camera_id, crop.images[0], crop.inference(0), runtime,
                                "background")


__all__ = ["NegativeMiner", "NegativeSink", "background_box", "distractor_crops"]
