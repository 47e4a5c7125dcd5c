"""Candidate negatives on real video: an MJPG clip decoded by OpenCV, crops classified by
ONNX Runtime and tracked; what the miner offers is recorded by a sink that always has a
token (the budget is the uploader's, tested in tests/unit/test_sample_budget.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_agent.config import CameraConfig
from edge_agent.regions.analyzer import RegionAnalyzer
from edge_agent.regions.mining import WARMUP_FRAMES, NegativeMiner
from edge_agent.runtime import Inference, ModelRuntime
from protocols import NegativeSource
from tests.region_kit import (
    BLUE,
    GREEN,
    RED,
    Thing,
    build_colour_model,
    colour_manifest,
    crossing,
    read_clip,
    write_clip,
)

FPS = 10.0


@dataclass
class Offered:
    frame: int
    source: NegativeSource
    label: str
    mean_bgr: tuple[float, float, float]


@dataclass
class Recorder:
    """Wants every negative; keeps what each offered crop looked like."""

    runtime: ModelRuntime
    frame: int = 0
    offers: list[Offered] = field(default_factory=list)

    def wants_negative(self, background: bool) -> bool:
        return True

    def offer_negative(self, camera_id: str, image: np.ndarray, result: Inference,
                       runtime: ModelRuntime, source: NegativeSource) -> None:
        assert camera_id == "lawn" and image.shape == (32, 32, 3)
        b, g, r = (float(v) for v in image.reshape(-1, 3).mean(axis=0))
        self.offers.append(Offered(self.frame, source, runtime.labels[result.top], (b, g, r)))


def mine(tmp: Path, things: list[Thing], n: int) -> Recorder:
    model = tmp / "colour.onnx"
    model.write_bytes(build_colour_model())
    runtime = ModelRuntime(model, colour_manifest(build_colour_model()), 1)
    analyzer = RegionAnalyzer(CameraConfig(camera_id="lawn", source="clip.avi",
                                           sample_fps=FPS), lambda *_a, **_k: None,
                              frozenset(), 0.6)
    miner, sink = NegativeMiner(seed=1), Recorder(runtime)
    for i, image in enumerate(read_clip(write_clip(tmp / "clip.avi", things, n, FPS))):
        sink.frame = i
        miner(sink, "lawn", analyzer, image, runtime,
              analyzer.analyse(image, i / FPS, runtime))
    return sink


def test_a_person_and_the_empty_lawn_are_offered_and_animals_never(tmp_path: Path) -> None:
    cat = Thing(RED, (40, 30), crossing(20, 60, 20, 300, 45))
    person = Thing(GREEN, (20, 60), crossing(20, 60, 40, 280, 125))
    dog = Thing(BLUE, (50, 36), crossing(25, 70, 300, 30, 200))
    offers = mine(tmp_path, [cat, person, dog], 100).offers
    by_source = {s: [o for o in offers if o.source == s]
                 for s in ("rejected", "track", "background")}
    # The person's crops, which the colour model calls "other": green dominates.
    assert len(by_source["rejected"]) >= 20
    for o in by_source["rejected"]:
        assert o.label == "other" and 20 <= o.frame < 62
        b, g, r = o.mean_bgr
        assert g > r and g > b, o
    # No crop of the cat's or the dog's track, whatever the model said of it.
    assert all(o.mean_bgr[2] < o.mean_bgr[1] + 5 and o.mean_bgr[0] < o.mean_bgr[1] + 5
               for o in offers), [o for o in offers if o.source != "background"][:3]
    # The empty lawn: only once the background model has settled and nothing moves.
    empty = by_source["background"]
    assert empty and all(o.frame >= WARMUP_FRAMES - 1 for o in empty)
    assert not any(20 <= o.frame < 72 for o in empty), "things were moving then"
    assert all(o.label == "other" for o in empty)
