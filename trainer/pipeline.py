"""``run_training``: the trainer's one public entry point, from image folder to registered version.

data -> train -> export -> parity -> calibrate -> evaluate -> profile -> write
``model.onnx``, ``report.json``, ``registration.json`` -> register (if ``api_url``).
The control plane runs this as a job; ``parkwatch train`` is a thin CLI over it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from protocols import ArtifactRef, Lineage, ModelVersionCreate, OutputSpec

from .config import TrainerSettings

log = logging.getLogger(__name__)
REPORT_SCHEMA = "parkwatch.trainer.report/v1"


@dataclass(frozen=True)
class TrainingResult:
    """What one run produced: files, the registration payload, key figures."""

    out_dir: Path
    model_path: Path
    registration_path: Path
    report_path: Path
    checkpoint_path: Path
    registration: ModelVersionCreate
    dataset_version: str
    metrics: dict[str, float]
    parity_max_abs_diff: float
    train_images_per_s: float
    seconds: float
    registered_version: str | None = None
    rejected_files: list[str] = field(default_factory=list)
    int8_path: Path | None = None  # the int8 artifact, when quantization ran
    primary_path: Path | None = None  # the artifact agents run (model_path or int8_path)
    int8_primary: bool = False
    report_md_path: Path | None = None
    validation_warnings: list[str] = field(default_factory=list)
    gate: dict[str, object] | None = None  # the quantization gate's figures and verdict


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


def _write_json(path: Path, data: Any) -> bytes:
    raw = (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(raw)
    tmp.replace(path)
    return raw


def resolve_token(settings: TrainerSettings) -> str | None:
    return settings.api_token or os.environ.get("PARKWATCH_API_TOKEN") or None


def run_training(
    settings: TrainerSettings, console: Console | None = None, show_progress: bool = True
) -> TrainingResult:
    """Train, export, quantize, check, profile, write and (with ``api_url``) register.

    With ``settings.job_id`` the run reports its status and progress to that
    control-plane job, ending in succeeded (with the registered version) or failed.
    """
    from .jobs import JobReporter

    console = console or Console(stderr=True, quiet=not show_progress)
    with JobReporter(settings.api_url, resolve_token(settings), settings.job_id) as job:
        job.start()
        result = _run(settings, console, show_progress, job)
        job.succeeded(
            result.registered_version,
            f"test accuracy {result.metrics['test_accuracy']:.4f}; primary "
            f"{'int8' if result.int8_primary else 'fp32'}",
        )
    return result


def _run(
    settings: TrainerSettings, console: Console, show_progress: bool, job: Any
) -> TrainingResult:
    import numpy as np
    import torch

    from .calibrate import fit_temperature
    from .data import ImageDataset, scan_image_folder
    from .evaluate import registry_metrics
    from .export import check_parity, export_onnx
    from .inference import OnnxModel, predict
    from .profile import golden_inputs, pick_golden_records, reference_profile
    from .registry_client import RegistryClient, register_model
    from .report_md import write_markdown
    from .shift_eval import shift_stage
    from .stages import evaluation_stage, input_spec, quantization_stage, train_stage
    from .validate import validation_report

    started = time.perf_counter()
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 3)
        mark = now
        log.info("trainer stage %s done in %.1fs", name, timings[name])
        job.stage_done(name)

    out_dir = settings.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    scan = scan_image_folder(
        settings.data_dir, settings.seed, settings.val_fraction, settings.test_fraction
    )
    for rejected in scan.rejected:
        log.warning("excluded %s: %s", rejected.rel_path, rejected.reason)
    validation = validation_report(scan, settings.near_duplicate_bits)
    _write_json(out_dir / "data_validation.json", validation)
    console.print(
        f"dataset {scan.version[:12]}: {len(scan.records)} images, labels {scan.labels}, "
        f"{len(scan.rejected)} rejected; validation: "
        f"{'; '.join(validation['warnings']) or 'no problems found'}",
        markup=False,
    )
    stage("scan")

    spec = input_spec(settings)
    train_records, val_records, test_records = (scan.split(s) for s in ("train", "val", "test"))
    outcome, trained, search = train_stage(
        settings, scan, console, show_progress,
        on_epoch=lambda e: job.epoch(e.epoch, settings.planned_epochs, e.val_accuracy),
    )
    model = outcome.model
    checkpoint_path = out_dir / "checkpoint.pt"
    torch.save(
        {
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "labels": scan.labels,
            "width_mult": trained.width_mult,
            "input_size": trained.input_size,
            "arch": trained.arch,
            "dataset_version": scan.version,
        },
        checkpoint_path,
    )
    stage("train")

    model_path = out_dir / "model.onnx"
    metadata = {
        "labels": scan.labels,
        "input_spec": spec.model_dump(mode="json"),
        "dataset_version": scan.version,
    }
    export_onnx(model, model_path, settings.input_size, metadata=metadata)
    parity_records = val_records[:32]
    parity_batch = np.stack(
        [ImageDataset(parity_records, spec)[i][0].numpy() for i in range(len(parity_records))]
    )
    parity = check_parity(model, model_path, parity_batch, settings.parity_atol)
    stage("export")

    fp32_test = predict(OnnxModel(model_path), test_records, spec)
    int8_path = out_dir / "model.int8.onnx"
    gate = None
    primary_path = model_path
    primary_reason = "fp32: int8 quantization is off (quantize = false)"
    if settings.quantize:
        gate, int8_test = quantization_stage(
            settings, model_path, int8_path, train_records, test_records, fp32_test, spec
        )
        primary_reason = gate.reason
        if gate.ship_int8:
            primary_path = int8_path
        console.print(f"quantization gate: {gate.reason}", markup=False)
        stage("quantize")
    else:
        int8_path.unlink(missing_ok=True)
    primary_precision = "int8" if primary_path == int8_path else "fp32"

    # Everything an agent compares against comes from the primary artifact it runs.
    primary = OnnxModel(primary_path)
    val_pred = predict(primary, val_records, spec)
    calibration = fit_temperature(val_pred.logits, val_pred.labels)
    test_pred = int8_test if primary_path == int8_path else fp32_test
    evaluation = evaluation_stage(
        settings.data_dir, test_records, test_pred, scan.labels, calibration
    )
    test_report = evaluation["test"]
    stage("evaluate")

    # A fixed sample (by file hash, which is unrelated to content) of the training split.
    profiled = sorted(train_records, key=lambda r: r.sha256)[: settings.profile_images]
    train_pred = predict(primary, profiled, spec, with_input_stats=True)
    profile = reference_profile(
        train_pred,
        scan.labels,
        calibration.temperature,
        confidence_bins=settings.confidence_bins,
        stat_bins=settings.profile_bins,
        components=settings.pca_components,
    )
    goldens = golden_inputs(
        primary,
        pick_golden_records(test_records, settings.golden_count),
        spec,
        settings.golden_atol,
    )
    stage("profile")

    if settings.shifts:
        evaluation["shifts"] = shift_stage(
            primary, test_records, spec, profile, calibration.temperature, settings.shifts,
            settings.shift_severity, settings.seed,
        )
        stage("shifts")

    artifacts: list[tuple[bytes, str]] = [(model_path.read_bytes(), "fp32")]
    if settings.quantize:
        artifacts.append((int8_path.read_bytes(), "int8"))
    refs = [
        ArtifactRef(sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                    precision=precision)  # type: ignore[arg-type]
        for data, precision in artifacts
    ]
    primary_ref = next(r for r in refs if r.precision == primary_precision)
    metrics = {
        **registry_metrics(test_report),
        "val_accuracy": float(outcome.best_val_accuracy),
        "temperature": calibration.temperature,
        "parity_max_abs_diff": parity.max_abs_diff,
        "train_images_per_s": outcome.images_per_s,
    }
    if gate is not None:
        metrics.update({
            "fp32_test_accuracy": gate.fp32_accuracy,
            "int8_test_accuracy": gate.int8_accuracy,
            "int8_accuracy_drop_points": gate.accuracy_drop_points,
            "int8_latency_ratio": gate.latency_ratio,
            "int8_size_ratio": gate.size_ratio,
        })
    hyperparameters = {
        **trained.hyperparameters(),
        "epochs_run": len(outcome.history),
        "best_epoch": outcome.best_epoch,
        "optimizer": "adamw" if trained.arch != "lite0" else "lbfgs probe"
        + ("" if trained.finetune == "none" else " + adamw fine-tune"),
        "schedule": "onecycle",
        "architecture": "efficientnet_lite0" if trained.arch == "lite0"
        else f"mobilenet_v3_{trained.arch}",
        "search_trials": len(search.trials) if search else 0,
    }
    lineage = Lineage(
        dataset_version=scan.version,
        code_version=code_version(),
        hyperparameters=hyperparameters,
        parent_version=settings.parent_version,
    )
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "created_at": datetime.now(UTC).isoformat(),
        "model_name": settings.model_name,
        "model": {"sha256": primary_ref.sha256, "size_bytes": primary_ref.size_bytes,
                  "precision": primary_precision},
        "artifacts": [r.model_dump(mode="json") for r in refs],
        "primary_reason": primary_reason,
        "settings": settings.model_dump(mode="json", exclude={"api_token"}),
        "lineage": lineage.model_dump(mode="json"),
        "dataset": scan.summary(),
        "data_validation": validation,
        "training": outcome.summary(),
        "search": search.summary() if search else None,
        "calibration": calibration.summary(),
        "parity": parity.summary(),
        "quantization": gate.summary() if gate else None,
        "evaluation": evaluation,
        "timings_s": timings,
    }
    report_md_path = write_markdown(report, out_dir)
    report_path = out_dir / "report.json"
    report_bytes = _write_json(report_path, report)

    registration = ModelVersionCreate(
        model_name=settings.model_name,
        labels=scan.labels,
        input=spec,
        outputs=OutputSpec(
            embedding_dim=int(train_pred.embeddings.shape[1]),
            temperature=calibration.temperature,
        ),
        artifacts=refs,
        primary_sha256=primary_ref.sha256,
        primary_reason=primary_reason[:1024],
        metrics=metrics,
        lineage=lineage,
        reference_profile=profile,
        golden_inputs=goldens,
        report_sha256=hashlib.sha256(report_bytes).hexdigest(),
    )
    registration_path = out_dir / "registration.json"
    _write_json(registration_path, registration.model_dump(mode="json"))
    stage("write")

    registered: str | None = None
    if settings.api_url:
        with RegistryClient(settings.api_url, resolve_token(settings)) as client:
            version = register_model(
                client, registration, [data for data, _ in artifacts] + [report_bytes]
            )
        registered = version.version
        _write_json(out_dir / "registered.json", version.response)
        console.print(f"registered {settings.model_name} version {registered}", markup=False)
        stage("register")

    return TrainingResult(
        out_dir=out_dir,
        model_path=model_path,
        registration_path=registration_path,
        report_path=report_path,
        checkpoint_path=checkpoint_path,
        registration=registration,
        dataset_version=scan.version,
        metrics=metrics,
        parity_max_abs_diff=parity.max_abs_diff,
        train_images_per_s=outcome.images_per_s,
        seconds=time.perf_counter() - started,
        registered_version=registered,
        rejected_files=[r.rel_path for r in scan.rejected],
        int8_path=int8_path if settings.quantize else None,
        primary_path=primary_path,
        int8_primary=primary_path == int8_path,
        report_md_path=report_md_path,
        validation_warnings=list(validation["warnings"]),
        gate=gate.summary() if gate else None,
    )


__all__ = ["TrainingResult", "code_version", "run_training"]
