"""What the trainer sends to register a model version (the trainer-control plane contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .manifest import (
    ArtifactRef,
    CropSpec,
    GoldenInput,
    InputSpec,
    OutputSpec,
    ReferenceProfile,
    Sha256,
)
from .messages import Label, added, utc_now


class Lineage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_version: Annotated[str, Field(max_length=128)]
    code_version: Annotated[str, Field(max_length=64)] = "unknown"
    hyperparameters: dict[str, Any] = {}
    parent_version: Annotated[str, Field(max_length=128)] | None = None
    trained_at: datetime = Field(default_factory=utc_now)


class ModelVersionCreate(BaseModel):
    """A trained model: artifacts already uploaded by sha256, plus all that a release needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    labels: Annotated[list[Label], Field(min_length=2, max_length=256)]
    input: InputSpec
    outputs: OutputSpec
    artifacts: Annotated[list[ArtifactRef], Field(min_length=1, max_length=8)]
    primary_sha256: Sha256
    primary_reason: Annotated[str, Field(max_length=1024)] = ""
    metrics: dict[str, float] = {}
    lineage: Lineage
    reference_profile: ReferenceProfile
    golden_inputs: Annotated[list[GoldenInput], Field(min_length=1, max_length=16)]
    report_sha256: Sha256 | None = None  # evaluation report uploaded as an artifact
    # For the agent's regions mode, copied into every release's manifest (see there).
    background_labels: list[Label] = added([], max_length=16)
    animal_min_confidence: float = added(0.0, ge=0, le=1)
    crops: CropSpec = added(CropSpec())
