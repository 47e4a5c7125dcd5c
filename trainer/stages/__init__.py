"""The trainer's stages, in order: :data:`STAGES` *is* the pipeline.

One module per stage (two for the data): each defines ``<name>_stage(ctx) -> <Output>``
and its frozen output dataclass; a stage reads the outputs it needs from the context
by type. To add a stage (say an evaluation on composed clips), write its function
and put it in the list after the outputs it reads; an output with
``evaluation_sections()`` lands in report.json's ``evaluation`` on its own.

Importing this package imports torch, ONNX Runtime and OpenCV; ``trainer.pipeline``
imports it only when a run starts.
"""

from __future__ import annotations

from ..result import TrainingResult
from ..runner import RunContext, Stage
from .data import Scanned, Splits, scan_stage, split_stage
from .evaluate import evaluate_stage
from .export import Exported, export_stage
from .judge import judge_stage
from .profile import profile_stage
from .quantize import Quantized, primary_artifact, quantize_stage
from .regions import RegionsEvaluated, regions_stage
from .register import Registered, register_stage
from .shifts import shifts_stage
from .train import Trained, train_stage
from .write import Written, write_stage

STAGES: tuple[Stage, ...] = (
    Stage("scan", scan_stage),
    Stage("split", split_stage),
    Stage("train", train_stage),
    Stage("export", export_stage),
    Stage("quantize", quantize_stage, when=lambda s: s.quantize, skip_reason="quantize = false"),
    Stage("evaluate", evaluate_stage),
    Stage("judge", judge_stage),
    Stage("profile", profile_stage),
    Stage("shifts", shifts_stage, when=lambda s: bool(s.shifts), skip_reason="no shifts set"),
    Stage("regions", regions_stage, when=lambda s: s.regions, skip_reason="regions = false"),
    Stage("write", write_stage),
    Stage("register", register_stage, when=lambda s: bool(s.api_url), skip_reason="no api_url"),
)


def training_result(ctx: RunContext, seconds: float) -> TrainingResult:
    """The caller's summary of a finished run (every stage up to ``write`` must have run)."""
    scan, exported, written = ctx[Scanned].scan, ctx[Exported], ctx[Written]
    trained, quantized, registered = ctx[Trained], ctx.get(Quantized), ctx.get(Registered)
    primary = primary_artifact(ctx)
    return TrainingResult(
        out_dir=ctx.settings.out_dir,
        model_path=exported.model_path,
        registration_path=written.registration_path,
        report_path=written.report_path,
        checkpoint_path=trained.checkpoint_path,
        registration=written.registration,
        dataset_version=scan.version,
        metrics=dict(written.registration.metrics),
        parity_max_abs_diff=exported.parity.max_abs_diff,
        train_images_per_s=trained.outcome.images_per_s,
        seconds=seconds,
        registered_version=registered.version if registered else None,
        rejected_files=[r.rel_path for r in scan.rejected],
        int8_path=quantized.int8_path if quantized else None,
        primary_path=primary.path,
        int8_primary=primary.precision == "int8",
        report_md_path=written.report_md_path,
        validation_warnings=list(ctx[Splits].validation["warnings"]),
        gate=quantized.gate.summary() if quantized else None,
        stages=ctx.records,
    )


__all__ = ["STAGES", "RegionsEvaluated", "training_result"]
