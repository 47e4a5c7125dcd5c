"""API bodies and answers added with issue 4: aliases, datasets, groups, labels, drift
reports, alerts, training jobs, tokens and keys (the first set is in ``schemas``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from .schemas import LabelKey, LabelValue, Scope, _Body

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
AlertState = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "critical"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobTrigger = Literal["manual", "drift", "accuracy", "new_data", "schedule"]


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong and how to fix it.")


class AliasSet(_Body):
    version: str = Field(min_length=1, max_length=32, description="Version the alias points at.")


class AliasPublic(BaseModel):
    model_name: str
    alias: str
    version: str
    updated_by: str
    updated_at: datetime


class DatasetVersionCreate(_Body):
    name: Name
    version: Name
    manifest_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    sample_count: int = Field(0, ge=0, le=2**62)
    class_counts: dict[LabelKey, Annotated[int, Field(ge=0, le=2**62)]] = Field(
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


class DeviceLabelsUpdate(_Body):
    set: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    remove: list[LabelKey] = Field(default_factory=list, max_length=64)


class GroupCreate(_Body):
    name: Name
    selector: dict[LabelKey, LabelValue] = Field(
        max_length=32, description="Labels a device must all carry; {} selects every device."
    )
    description: str | None = Field(None, max_length=1024)


class GroupPublic(BaseModel):
    name: str
    selector: dict[str, str]
    description: str | None
    device_count: int
    created_by: str
    created_at: datetime


class DriftReportPublic(BaseModel):
    id: int
    device_id: str | None
    release_id: str | None
    window_start: datetime
    window_end: datetime
    window_count: int
    sample_count: int
    drifted: bool
    statistics: dict[str, Any]
    created_at: datetime


class AlertPublic(BaseModel):
    id: int
    kind: str
    severity: str
    state: str
    message: str
    device_id: str | None
    release_id: str | None
    drift_report_id: int | None
    detail: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    updated_by: str | None


class AlertUpdate(_Body):
    state: Literal["acknowledged", "resolved"]
    note: str | None = Field(None, max_length=1024)


class JobCreate(_Body):
    model_name: Name
    trigger: JobTrigger = "manual"
    dataset_version: str | None = Field(None, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict, max_length=64)


class JobUpdate(_Body):
    """What the trainer reports back; every field optional, at least one needed."""

    status: JobStatus | None = None
    progress: float | None = Field(None, ge=0.0, le=1.0)
    stage: str | None = Field(None, max_length=64)
    message: str | None = Field(None, max_length=1024)
    result_version: str | None = Field(None, min_length=1, max_length=32)


class JobPublic(BaseModel):
    job_id: str
    model_name: str
    trigger: str
    status: str
    progress: float
    stage: str | None
    message: str | None
    dataset_version: str | None
    params: dict[str, Any]
    result_version: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class TokenCreate(_Body):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, max_length=4)


class TokenPublic(BaseModel):
    id: int
    name: str
    scopes: list[str]
    device_id: str | None
    created_at: datetime
    revoked: bool


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret; shown only in this answer.")


class KeyPublic(BaseModel):
    key_id: str
    active: bool
    public_key_pem: str
