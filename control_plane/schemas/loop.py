"""Bodies and answers of the loop's closing half: drift reports, alerts, training jobs,
and the dead letters ingest kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..services.states import JobStatus
from .common import Name, RequestBody

Severity = Literal["info", "warning", "critical"]




JobTrigger = Literal["manual", "drift", "accuracy", "new_data", "schedule"]


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


class AlertUpdate(RequestBody):
    state: Literal["acknowledged", "resolved"]
    note: str | None = Field(None, max_length=1024)


class JobCreate(RequestBody):
    model_name: Name
    trigger: JobTrigger = "manual"
    dataset_version: str | None = Field(None, max_length=128)
    params: dict[str, Any] = Field(default_factory=dict, max_length=64)


class JobUpdate(RequestBody):
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


class DeadLetterPublic(BaseModel):
    id: int
    received_at: datetime
    kind: str = Field(description="What it was: telemetry, status, reported or events.")
    device_id: str
    topic: str | None
    error: str = Field(description="Why it did not store, the last time it was tried.")
    message: str = Field(description="The message as the device sent it (JSON).")


class DeadLetterReplay(BaseModel):
    done: int = Field(description="Stored this time (or found stored already): deleted.")
    outcomes: dict[str, int] = Field(description="What ingest made of those done.")
    failed: int = Field(description="Failed again: kept, with the new error.")
    errors: dict[int, str] = Field(description="The new error of each that failed again, "
                                   "by id (the first 100).")
