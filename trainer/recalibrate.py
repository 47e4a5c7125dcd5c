"""Calibrate a trained regions model's folder again, without retraining:
``parkwatch recalibrate OUT_DIR``.

The temperature is fitted again on the validation crops and the animal confidence
calibrated for ``region_false_animals_per_hour`` on ``region_calibration_crops`` held-out
"other" crops (``trainer.stages.regions``), with the folder's own training settings
(report.json) unless overridden. What depends on them follows: the test report (NLL,
ECE), the drift reference profile's confidence histogram, the clip figures, the
registry's metrics, report.json, report.md and registration.json. A registration the
control plane already holds no longer matches the folder: ``registered.json`` is
removed, and ``parkwatch register OUT_DIR`` registers the recalibrated model as a new
version.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocols import CropSpec, ModelVersionCreate, ReferenceProfile

from .calibrate import fit_temperature
from .config import TrainerSettings, load_settings
from .errors import TrainerError
from .evaluate import classification_report, registry_metrics
from .inference import OnnxModel, predict
from .profile import reference_profile
from .register_folder import REGISTERED_FILE, load_registration
from .report_md import write_markdown
from .runner import RunContext
from .stages.data import Splits, scan_stage, split_stage
from .stages.evaluate import slice_reports
from .stages.regions import BACKGROUND, RegionsEvaluated, animal_confidence, clip_figures
from .stages.train import val_crop_logits


def folder_settings(out_dir: Path, report: dict[str, Any], **overrides: Any) -> TrainerSettings:
    """The run's settings from its report.json (settings this code no longer has are
    dropped), with ``overrides`` (None: keep) and the folder as the output."""
    known = TrainerSettings.model_fields
    saved = {k: v for k, v in report.get("settings", {}).items() if k in known}
    saved.pop("api_token", None)
    saved.update({k: v for k, v in overrides.items() if v is not None}, out_dir=out_dir)
    return load_settings(None, **saved)


def recalibrate(out_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Recalibrate the folder in place; its new ``evaluation.regions.calibration``."""
    registration = load_registration(out_dir)
    report = json.loads((out_dir / "report.json").read_text())
    if not report.get("settings", {}).get("regions"):
        raise TrainerError(f"{out_dir} holds a whole-frame model (regions = false): only a "
                           "regions model has an animal confidence to calibrate")
    crops = registration.crops or CropSpec()
    # The held-out crops are cut as the release's agents cut them, whatever the run's
    # settings said (a folder registered with crops.destreak it was not trained with).
    s = folder_settings(out_dir, report, region_destreak=crops.destreak, **overrides)
    ctx = RunContext(s)
    ctx = ctx.with_outputs(scan_stage(ctx))
    splits = split_stage(ctx)
    if splits.labels != registration.labels:
        raise TrainerError(f"{s.data_dir} gives labels {splits.labels}, the model has "
                           f"{registration.labels}: pass the data folder it was trained on")
    primary = next(a for a in registration.artifacts
                   if a.sha256 == registration.primary_sha256)
    model = OnnxModel(out_dir / ("model.int8.onnx" if primary.precision == "int8"
                                 else "model.onnx"))
    val = val_crop_logits(s, splits, model)
    fit = fit_temperature(val.logits, val.labels, fitted_on="validation crops")
    t = fit.temperature
    threshold, calibration = animal_confidence(s, splits, model, t, val)
    regions = RegionsEvaluated(list(BACKGROUND), threshold, crops,
                               {"calibration": calibration,
                                "clips": clip_figures(s, splits, model, t, threshold)})
    test = predict(model, splits.test, splits.spec)
    report["evaluation"].update(
        test=classification_report(test.logits, test.labels, splits.labels, t),
        slices=slice_reports(s.data_dir, splits.test, test, splits.labels, t),
        regions=regions.regions)
    report.update(calibration=fit.summary(), settings=s.model_dump(mode="json",
                                                                    exclude={"api_token"}),
                  recalibrated_at=datetime.now(UTC).isoformat())
    write_markdown(report, out_dir)
    report_bytes = ctx.write_json("report.json", report)
    ctx.write_json("registration.json", _registration(
        registration, report, regions, _profile(s, splits, model, t),
        hashlib.sha256(report_bytes).hexdigest()).model_dump(mode="json"))
    (out_dir / REGISTERED_FILE).unlink(missing_ok=True)
    return calibration


def _profile(s: TrainerSettings, splits: Splits, model: OnnxModel, temperature: float
             ) -> ReferenceProfile:
    """The reference profile again (the profile stage's sample): its confidence
    histogram depends on the temperature."""
    sample = sorted(splits.train, key=lambda r: r.sha256)[: s.profile_images]
    pred = predict(model, sample, splits.spec, with_input_stats=True)
    return reference_profile(pred, splits.labels, temperature,
                             confidence_bins=s.confidence_bins, stat_bins=s.profile_bins,
                             components=s.pca_components)


def _registration(old: ModelVersionCreate, report: dict[str, Any], regions: RegionsEvaluated,
                  profile: ReferenceProfile, report_sha256: str) -> ModelVersionCreate:
    t = report["calibration"]["temperature"]
    metrics = {k: v for k, v in old.metrics.items()
               if not k.startswith(("test_", "regions_"))}
    metrics.update(registry_metrics(report["evaluation"]["test"]), temperature=t,
                   **regions.metrics())
    return old.model_copy(update={
        "outputs": old.outputs.model_copy(update={"temperature": t}),
        "animal_min_confidence": regions.animal_min_confidence,
        "metrics": metrics, "reference_profile": profile, "report_sha256": report_sha256})


__all__ = ["folder_settings", "recalibrate"]
