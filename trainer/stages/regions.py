"""The ``regions`` stage (``regions = true``): the animal confidence the agent applies,
calibrated on validation crops, and the primary artifact on crops of park clips filmed
from the test photos (``trainer.region_eval``).

Its output tells the registration which labels are no animal and from what confidence
an animal crop counts; report.json gets ``evaluation.regions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from protocols import CropSpec

from .. import region_eval
from ..calibrate import softmax
from ..crops import OTHER
from ..runner import Figure, RunContext
from .data import Splits
from .evaluate import Evaluated
from .train import Trained, region_crops


@dataclass(frozen=True)
class RegionsEvaluated:
    background_labels: list[str]
    animal_min_confidence: float
    crops: CropSpec
    regions: dict[str, Any]  # report.json's evaluation.regions

    def evaluation_sections(self) -> dict[str, Any]:
        return {"regions": self.regions}

    def metrics(self) -> dict[str, float]:
        """The registry's regions metrics."""
        out = {"animal_min_confidence": self.animal_min_confidence}
        clips = self.regions.get("clips")
        if clips:
            out["regions_clip_accuracy"] = float(clips["accuracy"])
            out["regions_false_animal_rate"] = float(clips["false_animal_rate"])
        return out

    def figures(self) -> dict[str, Figure]:
        figures: dict[str, Figure] = {"animal_min_confidence": self.animal_min_confidence}
        clips = self.regions.get("clips")
        if clips:
            figures["clip_accuracy"] = clips["accuracy"]
            figures["clip_false_animal_rate"] = clips["false_animal_rate"]
        return figures


def regions_stage(ctx: RunContext) -> RegionsEvaluated:
    s, splits, evaluated = ctx.settings, ctx[Splits], ctx[Evaluated]
    model, t = evaluated.model, evaluated.calibration.temperature
    background = [OTHER]
    _, val = region_crops(ctx[Trained].settings, splits.labels, splits.spec, [], splits.val)
    logits = region_eval.predict_crops(model, [val.image(i) for i in range(len(val))],
                                       splits.spec)
    y = np.array([r.label_index for r in val.records], np.int64)
    threshold, calibration = region_eval.calibrate(
        softmax(logits, t), y, [splits.labels.index(b) for b in background],
        s.region_false_animal_rate)
    regions: dict[str, Any] = {"calibration": calibration, "clips": None}
    if s.region_eval_seconds > 0:
        crops = region_eval.clip_crops(s.data_dir, splits.spec, CropSpec(),
                                       s.region_eval_seconds, s.seed, s.val_fraction,
                                       s.test_fraction)
        regions["clips"] = {
            "seconds_per_condition": s.region_eval_seconds,
            **region_eval.clip_report(
                crops, region_eval.predict_crops(model, crops.images, splits.spec),
                splits.labels, background, t, threshold),
        }
    return RegionsEvaluated(background, threshold, CropSpec(), regions)


__all__ = ["RegionsEvaluated", "regions_stage"]
