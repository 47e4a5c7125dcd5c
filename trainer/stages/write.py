"""The ``write`` stage: report.json, report.md (with the confusion matrix), registration.json.

The registration is the ``ModelVersionCreate`` the control plane receives: both
artifacts by content hash, the primary one and why, metrics (the quality verdict's
included), lineage, the reference profile, the golden inputs and the report's own
hash. report.json records the stages run before it (this one and ``register`` are
still running when it is written). A model the ``judge`` stage failed gets its reports
but no registration.json, and the stage fails with the verdict's reasons.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocols import ArtifactRef, Lineage, ModelVersionCreate, OutputSpec

from ..errors import ModelQualityError
from ..evaluate import registry_metrics
from ..quality import Verdict
from ..report_md import write_markdown
from ..runner import EvaluationOutput, Figure, RunContext
from .data import Scanned, Splits
from .evaluate import Evaluated
from .export import Exported
from .profile import Profiled
from .quantize import Precision, Quantized
from .regions import RegionsEvaluated
from .train import Trained

REPORT_SCHEMA = "parkwatch.trainer.report/v1"


def code_version() -> str:
    """Git commit of the trainer's code (``+dirty`` with local changes), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10,
        )
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@dataclass(frozen=True)
class Written:
    registration: ModelVersionCreate
    registration_path: Path
    report_path: Path
    report_md_path: Path
    report_bytes: bytes
    artifacts: tuple[bytes, ...]  # the model files, in registration order (fp32, int8)

    def figures(self) -> dict[str, Figure]:
        primary = next(a for a in self.registration.artifacts
                       if a.sha256 == self.registration.primary_sha256)
        return {"primary": primary.precision, "primary_sha256": primary.sha256[:12],
                "artifacts": len(self.artifacts)}


def model_files(ctx: RunContext) -> list[tuple[bytes, ArtifactRef]]:
    """Each model file's bytes and reference: fp32, then int8 when the quantize stage ran."""
    paths: list[tuple[Path, Precision]] = [(ctx[Exported].model_path, "fp32")]
    quantized = ctx.get(Quantized)
    if quantized is not None:
        paths.append((quantized.int8_path, "int8"))
    out = []
    for path, precision in paths:
        data = path.read_bytes()
        out.append((data, ArtifactRef(sha256=hashlib.sha256(data).hexdigest(),
                                      size_bytes=len(data), precision=precision)))
    return out


def run_metrics(ctx: RunContext) -> dict[str, float]:
    """The registry's metrics: test figures, validation, calibration, parity, the gate's."""
    evaluated, outcome = ctx[Evaluated], ctx[Trained].outcome
    metrics = {
        **registry_metrics(evaluated.test),
        "val_accuracy": float(outcome.best_val_accuracy),
        "temperature": evaluated.calibration.temperature,
        "parity_max_abs_diff": ctx[Exported].parity.max_abs_diff,
        "train_images_per_s": outcome.images_per_s,
        **ctx[Verdict].metrics(),
    }
    regions = ctx.get(RegionsEvaluated)
    if regions is not None:
        metrics.update(regions.metrics())
    quantized = ctx.get(Quantized)
    if quantized is not None:
        gate = quantized.gate
        metrics.update({
            "fp32_test_accuracy": gate.fp32_accuracy,
            "int8_test_accuracy": gate.int8_accuracy,
            "int8_accuracy_drop_points": gate.accuracy_drop_points,
            "int8_latency_ratio": gate.latency_ratio,
            "int8_size_ratio": gate.size_ratio,
        })
    return metrics


def build_report(ctx: RunContext, refs: list[ArtifactRef], lineage: Lineage) -> dict[str, Any]:
    """report.json's content; ``evaluation`` gathers every evaluation stage's sections."""
    evaluated, trained, quantized = ctx[Evaluated], ctx[Trained], ctx.get(Quantized)
    primary = next(r for r in refs if r.precision == evaluated.primary.precision)
    evaluation: dict[str, Any] = {}
    for output in ctx.outputs.values():
        if isinstance(output, EvaluationOutput):
            evaluation.update(output.evaluation_sections())
    return {
        "schema": REPORT_SCHEMA,
        "created_at": datetime.now(UTC).isoformat(),
        "model_name": ctx.settings.model_name,
        "model": {"sha256": primary.sha256, "size_bytes": primary.size_bytes,
                  "precision": primary.precision},
        "artifacts": [r.model_dump(mode="json") for r in refs],
        "primary_reason": evaluated.primary.reason,
        "settings": ctx.settings.model_dump(mode="json", exclude={"api_token"}),
        "lineage": lineage.model_dump(mode="json"),
        "dataset": ctx[Scanned].scan.summary(),
        "data_validation": ctx[Splits].validation,
        "training": trained.outcome.summary(),
        "search": trained.search.summary() if trained.search else None,
        "calibration": evaluated.calibration.summary(),
        "parity": ctx[Exported].parity.summary(),
        "quantization": quantized.gate.summary() if quantized else None,
        "evaluation": evaluation,
        "timings_s": ctx.timings(),
        "stages": [r.summary() for r in ctx.records],
    }


def write_stage(ctx: RunContext) -> Written:
    s, evaluated, profiled = ctx.settings, ctx[Evaluated], ctx[Profiled]
    files = model_files(ctx)
    refs = [ref for _, ref in files]
    lineage = Lineage(
        dataset_version=ctx[Scanned].scan.version,
        code_version=code_version(),
        hyperparameters=ctx[Trained].hyperparameters(),
        parent_version=s.parent_version,
    )
    report = build_report(ctx, refs, lineage)
    report_md_path = write_markdown(report, s.out_dir)
    report_bytes = ctx.write_json("report.json", report)
    verdict = ctx[Verdict]
    if not verdict.registrable:
        # A registration left by an earlier run here would name files this run replaced.
        for stale in ("registration.json", "registered.json"):
            (s.out_dir / stale).unlink(missing_ok=True)
        raise ModelQualityError(verdict.refusal(str(s.out_dir)))
    registration = ModelVersionCreate(
        model_name=s.model_name,
        labels=ctx[Splits].labels,
        input=ctx[Splits].spec,
        outputs=OutputSpec(embedding_dim=profiled.embedding_dim,
                           temperature=evaluated.calibration.temperature),
        artifacts=refs,
        primary_sha256=report["model"]["sha256"],
        primary_reason=evaluated.primary.reason[:1024],
        metrics=run_metrics(ctx),
        lineage=lineage,
        reference_profile=profiled.profile,
        golden_inputs=profiled.goldens,
        report_sha256=hashlib.sha256(report_bytes).hexdigest(),
    )
    regions = ctx.get(RegionsEvaluated)
    if regions is not None:
        registration = registration.model_copy(update={
            "background_labels": regions.background_labels,
            "animal_min_confidence": regions.animal_min_confidence,
            "crops": regions.crops})
    ctx.write_json("registration.json", registration.model_dump(mode="json"))
    return Written(registration, ctx.out_path("registration.json"), ctx.out_path("report.json"),
                   report_md_path, report_bytes, tuple(data for data, _ in files))


__all__ = ["REPORT_SCHEMA", "Written", "build_report", "code_version", "model_files",
           "run_metrics", "write_stage"]
