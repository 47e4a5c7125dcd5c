"""Settings of ``parkwatch worker`` (the ``[worker]`` table): triggers, data, comparison."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class WorkerSettings(BaseModel):
    """Continuous training: what triggers a job, what it trains on, when a challenger wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str | None = Field(
        None,
        description="Model the worker retrains. Drift and accuracy alerts name their release's "
        "model; new-data and schedule triggers need this set.",
    )
    dataset_dir: Path | None = Field(
        None,
        description="ImageFolder (one sub-folder per label) of the current dataset version; "
        "each job trains on it plus the labelled samples not yet used.",
    )
    dataset_name: str = Field("parkwatch", description="Name new dataset versions get.")
    base_dataset_version: str | None = Field(
        None, description="Version of dataset_dir, recorded as the new versions' parent."
    )
    holdout_dir: Path | None = Field(
        None,
        description="ImageFolder never trained on; champion and challenger are both scored "
        "on it plus the held-out share of labelled samples.",
    )
    holdout_fraction: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="Share of new labelled samples kept out of training for the comparison "
        "(picked by image hash, so the same sample always goes the same way).",
    )
    poll_interval_s: float = Field(10.0, gt=0, description="Seconds between trigger checks.")
    on_drift_alert: bool = Field(True, description="An open drift alert creates a job.")
    on_accuracy_alert: bool = Field(
        True, description="An open estimated-accuracy alert creates a job."
    )
    new_samples: int = Field(
        50, ge=0, description="N labelled samples not yet in a dataset create a job; 0: off."
    )
    schedule_hours: float = Field(
        0, ge=0, description="Retrain at least this often (hours since the last job); 0: off."
    )
    win_margin: float = Field(
        0.01,
        ge=-1,
        le=1,
        description="Accuracy points (0-1) the challenger must beat the champion by on the "
        "same held-out data before it is registered as `challenger` and shadowed.",
    )
    trainer_command: list[str] = Field(
        default_factory=lambda: [sys.executable, "-m", "parkwatch_cli", "train"],
        description="How to run the trainer (its public CLI); the worker adds --data, --out, "
        "--job-id, --api-url, --token, --model-name and --parent-version.",
    )
    trainer_args: list[str] = Field(
        default_factory=list, description="Extra trainer arguments, e.g. [\"--epochs\", \"5\"]."
    )
    trainer_timeout_s: float = Field(6 * 3600, gt=0, description="Longest training run.")
    api_url: str | None = Field(
        None, description="API the trainer registers with; unset: the server's public URL."
    )
    shadow_devices: list[str] | None = Field(
        None, description="Devices of the shadow rollout; unset: every device."
    )
    promotion: Literal["approval", "automatic"] = Field(
        "approval",
        description="Policy after the shadow phase: a human approves promotion (audited), or "
        "the rollout may promote by itself when its gates pass.",
    )


__all__ = ["WorkerSettings"]
