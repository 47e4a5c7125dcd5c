"""The ``regions`` stage (``regions = true``): the animal confidence the agent applies,
calibrated for a number of false animals per camera-hour on held-out "other" crops, and
the primary artifact on crops of park clips filmed from the test photos
(``trainer.region_eval``).

Its output tells the registration which labels are no animal and from what confidence
an animal crop counts; report.json gets ``evaluation.regions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocols import CropSpec

from .. import region_eval
from ..calibrate import softmax
from ..config import TrainerSettings
from ..crops import OTHER
from ..inference import OnnxModel
from ..runner import Figure, RunContext
from .data import Splits
from .evaluate import Evaluated
from .train import CropLogits, Trained, region_crop_spec, val_crop_logits

BACKGROUND = (OTHER,)  # the labels that are no animal


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


def animal_confidence(s: TrainerSettings, splits: Splits, model: OnnxModel, temperature: float,
                      val: CropLogits) -> tuple[float, dict[str, Any]]:
    """The animal confidence for ``s.region_false_animals_per_hour``, calibrated on
    ``s.region_calibration_crops`` held-out "other" crops, and its figures."""
    other = region_eval.calibration_crops(s.seed, s.region_calibration_crops, splits.spec,
                                          region_crop_spec(s))
    other_logits = region_eval.predict_crops(model, other, splits.spec)
    return region_eval.calibrate(
        softmax(val.logits, temperature), val.labels, softmax(other_logits, temperature),
        [splits.labels.index(b) for b in BACKGROUND], s.region_false_animals_per_hour,
        s.region_other_regions_per_hour)


def clip_figures(s: TrainerSettings, splits: Splits, model: OnnxModel, temperature: float,
                 threshold: float) -> dict[str, Any] | None:
    """The model on crops of park clips of the test photos (None: ``region_eval_seconds`` 0)."""
    if s.region_eval_seconds <= 0:
        return None
    crops = region_eval.clip_crops(s.data_dir, splits.spec, region_crop_spec(s),
                                   s.region_eval_seconds, s.seed, s.val_fraction,
                                   s.test_fraction)
    return {
        "seconds_per_condition": s.region_eval_seconds,
        **region_eval.clip_report(
            crops, region_eval.predict_crops(model, crops.images, splits.spec),
            splits.labels, BACKGROUND, temperature, threshold),
    }


def regions_stage(ctx: RunContext) -> RegionsEvaluated:
    s, splits, evaluated = ctx.settings, ctx[Splits], ctx[Evaluated]
    model, t = evaluated.model, evaluated.calibration.temperature
    val = evaluated.val_crops or val_crop_logits(ctx[Trained].settings, splits, model)
    threshold, calibration = animal_confidence(s, splits, model, t, val)
    regions = {"calibration": calibration, "clips": clip_figures(s, splits, model, t, threshold)}
    return RegionsEvaluated(list(BACKGROUND), threshold, region_crop_spec(s), regions)


__all__ = ["BACKGROUND", "RegionsEvaluated", "animal_confidence", "clip_figures",
           "regions_stage"]
