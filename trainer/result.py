"""``TrainingResult``: what one run produced, as ``run_training`` returns it (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from protocols import ModelVersionCreate

from .runner import StageRecord


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
    stages: tuple[StageRecord, ...] = ()  # every stage with its seconds, status and figures


__all__ = ["TrainingResult"]
