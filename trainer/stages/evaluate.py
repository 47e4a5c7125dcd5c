"""The ``evaluate`` stage: the primary artifact (what agents run) on the held-out splits.

Temperature scaling is fitted on the validation split: for a regions model on its
agent-shaped crops (``val_crop_logits``), which is what the agent classifies, not on the
whole photos, whose confidences a crop's never look like. The test split gives the
metrics, overall and per slice (``slices.json`` in the data folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..calibrate import TemperatureFit, fit_temperature
from ..data import ImageRecord
from ..evaluate import classification_report
from ..inference import OnnxModel, Predictions, predict
from ..runner import Figure, RunContext
from ..slices import load_slices, slice_members
from .data import Splits
from .quantize import Primary, Quantized, primary_artifact
from .train import CropLogits, Trained, val_crop_logits


@dataclass(frozen=True)
class Evaluated:
    primary: Primary
    model: OnnxModel  # a session on the primary artifact, for the stages that follow
    calibration: TemperatureFit
    test: dict[str, Any]  # classification report of the test split
    slices: dict[str, Any]  # the same per slice
    val_crops: CropLogits | None = None  # regions: the validation crops' logits

    def evaluation_sections(self) -> dict[str, Any]:
        return {"test": self.test, "slices": self.slices}

    def figures(self) -> dict[str, Figure]:
        figures: dict[str, Figure] = {"precision": self.primary.precision,
                                      "test_accuracy": self.test["accuracy"],
                                      "test_macro_f1": self.test["macro_f1"],
                                      "temperature": self.calibration.temperature}
        if self.slices:
            figures["slices"] = len(self.slices)
        return figures


def slice_reports(
    data_dir: Path,
    records: Sequence[ImageRecord],
    pred: Predictions,
    labels: list[str],
    temperature: float,
) -> dict[str, Any]:
    """Test report per slice of ``slices.json`` (empty without one)."""
    out: dict[str, Any] = {}
    for name, members in slice_members(records, load_slices(data_dir)).items():
        idx = np.asarray(members, dtype=np.int64)
        out[name] = classification_report(
            pred.logits[idx] if len(idx) else np.zeros((0, len(labels)), np.float32),
            pred.labels[idx], labels, temperature,
        )
    return out


def evaluate_stage(ctx: RunContext) -> Evaluated:
    splits, primary = ctx[Splits], primary_artifact(ctx)
    model = OnnxModel(primary.path)
    val_crops = None
    if ctx.settings.regions:
        val_crops = val_crop_logits(ctx[Trained].settings, splits, model)
        calibration = fit_temperature(val_crops.logits, val_crops.labels,
                                      fitted_on="validation crops")
    else:
        val = predict(model, splits.val, splits.spec)
        calibration = fit_temperature(val.logits, val.labels)
    quantized = ctx.get(Quantized)
    if quantized is None:
        test = predict(model, splits.test, splits.spec)
    else:  # the quantize stage scored both models on the test split already
        test = quantized.int8_test if primary.precision == "int8" else quantized.fp32_test
    t = calibration.temperature
    return Evaluated(
        primary, model, calibration,
        classification_report(test.logits, test.labels, splits.labels, t),
        slice_reports(ctx.settings.data_dir, splits.test, test, splits.labels, t),
        val_crops,
    )


__all__ = ["Evaluated", "evaluate_stage", "slice_reports"]
