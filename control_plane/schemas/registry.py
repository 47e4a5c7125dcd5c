"""Registry bodies and answers: artifacts, models, versions, aliases, dataset versions, releases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from .common import LabelKey, Name, RequestBody


class ArtifactPublic(BaseModel):
    sha256: str
    size_bytes: int


class ModelPublic(BaseModel):
    name: str
    latest_version: str | None
    version_count: int
    created_at: datetime


class ModelVersionPublic(BaseModel):
    model_name: str
    version: str
    created_at: datetime
    created_by: str
    labels: list[str]
    primary_sha256: str
    primary_reason: str
    artifacts: list[dict[str, Any]]
    metrics: dict[str, float]
    lineage: dict[str, Any]
    report_sha256: str | None
    aliases: list[str] = Field(default_factory=list, description="Aliases naming this version.")


class AliasSet(RequestBody):
    version: str = Field(min_length=1, max_length=32, description="Version the alias points at.")


class AliasPublic(BaseModel):
    model_name: str
    alias: str
    version: str
    updated_by: str
    updated_at: datetime


class DatasetVersionCreate(RequestBody):
    name: Name
    version: Name
    manifest_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    # 2**53: the largest integer every JSON client (and a float comparison) holds exactly.
    sample_count: int = Field(0, ge=0, le=2**53)
    class_counts: dict[LabelKey, Annotated[int, Field(ge=0, le=2**53)]] = Field(
        default_factory=dict, max_length=1024
    )
    source: str | None = Field(None, max_length=1024)
    detail: dict[str, Any] = Field(default_factory=dict, max_length=64)


class DatasetVersionPublic(BaseModel):
    name: str
    version: str
    manifest_sha256: str | None
    sample_count: int
    class_counts: dict[str, int]
    source: str | None
    detail: dict[str, Any]
    created_by: str
    created_at: datetime


class ReleaseCreate(RequestBody):
    model_name: str = Field(min_length=1, max_length=64)
    version: str | None = Field(
        None, max_length=64,
        description="Model version number or alias; unset: the champion alias, or the latest "
        "version of a model without one.",
    )
    override_gate_reason: str | None = Field(
        None, max_length=1024,
        description="Sign even though the version fails the release gate; the reason goes "
        "to the audit log.",
    )


class ReleasePublic(BaseModel):
    release_id: str
    model_name: str
    model_version: str
    key_id: str
    primary_sha256: str
    created_at: datetime


class ComparedVersion(BaseModel):
    version: str
    created_at: datetime
    created_by: str
    labels: list[str]
    dataset_version: str
    gate: str = Field(description="`passes`, or why the release gate refuses this version.")


class MetricDelta(BaseModel):
    metric: str
    a: float | None
    b: float | None
    delta: float | None = Field(description="b - a; null when either lacks the metric.")


class VersionComparison(BaseModel):
    model_name: str
    a: ComparedVersion
    b: ComparedVersion
    metrics: list[MetricDelta]
