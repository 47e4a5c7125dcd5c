"""The loop's tables: drift reports and per-camera baselines, alerts, training jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ._types import BigId, UTCDateTime, _json, utc_now


class DriftReport(SQLModel, table=True):
    """Drift of one device (or the fleet, ``device_id`` null) over a span of windows."""

    __tablename__ = "drift_report"
    __table_args__ = (sa.Index("ix_drift_report_device_created", "device_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    device_id: str | None = Field(default=None, foreign_key="device.device_id", max_length=63)
    release_id: str | None = Field(default=None, max_length=64, index=True)
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    window_count: int = 0
    sample_count: int = Field(default=0, sa_type=sa.BigInteger)
    drifted: bool = False
    statistics: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Alert(SQLModel, table=True):
    """Something an operator should look at; ``state`` open -> acknowledged -> resolved."""

    __tablename__ = "alert"
    __table_args__ = (sa.Index("ix_alert_state_created", "state", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    state: str = Field(max_length=16)
    message: str = Field(max_length=1024)
    device_id: str | None = Field(
        default=None, foreign_key="device.device_id", index=True, max_length=63
    )
    release_id: str | None = Field(default=None, max_length=64)
    drift_report_id: int | None = Field(default=None, foreign_key="drift_report.id", sa_type=BigId)
    detail: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=128)


class TrainingJob(SQLModel, table=True):
    """A (re)training run; the trainer reports ``status``/``progress`` back over the API."""

    __tablename__ = "training_job"
    __table_args__ = (sa.Index("ix_training_job_status_created", "status", "created_at"),)

    job_id: str = Field(primary_key=True, max_length=64)
    model_name: str = Field(max_length=64, index=True)
    trigger: str = Field(max_length=32)
    status: str = Field(max_length=16)
    progress: float = 0.0
    stage: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, max_length=1024)
    dataset_version: str | None = Field(default=None, max_length=128)
    params: dict[str, Any] = _json()
    result_version: str | None = Field(default=None, max_length=32)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class DriftBaseline(SQLModel, table=True):
    """A camera's production baseline in one condition under one release (docs/drift.md):
    merged counts of its first windows and, per feature, its fitted alarm level.
    ``version`` counts the baselines of (device, camera, condition); ``retired_at`` set:
    reset by an operator or replaced; the active one has none."""

    __tablename__ = "drift_baseline"
    __table_args__ = (
        sa.Index("ix_drift_baseline_key", "device_id", "camera_id", "condition", "release_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    device_id: str = Field(foreign_key="device.device_id", max_length=63)
    camera_id: str = Field(max_length=64)
    condition: str = Field(max_length=16)
    release_id: str = Field(max_length=64, index=True)
    version: int = 1
    window_count: int = 0
    sample_count: int = Field(default=0, sa_type=sa.BigInteger)
    window_minutes: float = 1.0
    counts: dict[str, Any] = _json()
    levels: dict[str, Any] = _json()
    learned_from: datetime = Field(sa_type=UTCDateTime)
    learned_to: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_by: str | None = Field(default=None, max_length=128)
    retired_reason: str | None = Field(default=None, max_length=256)


class DriftBaselinePool(SQLModel, table=True):
    """A window of a camera × condition still learning its baseline under a release: the
    camera's part of the window (JSON, with ``window_minutes``), kept across analyses
    until the baseline is learned from them (``drift/baseline_pool.py``), so a condition
    of a few minutes a day learns over days. At most ``baseline_windows`` per key."""

    __tablename__ = "drift_baseline_pool"

    device_id: str = Field(foreign_key="device.device_id", primary_key=True, max_length=63)
    release_id: str = Field(primary_key=True, max_length=64)
    camera_id: str = Field(primary_key=True, max_length=64)
    condition: str = Field(primary_key=True, max_length=16)
    window_id: int = Field(primary_key=True, sa_type=sa.BigInteger)  # telemetry_window.id
    received_at: datetime = Field(sa_type=UTCDateTime)
    camera: str = Field(sa_type=sa.Text)


class DriftBaselineAttempt(SQLModel, table=True):
    """Why a camera × condition has no baseline under a release yet: the latest attempt
    to learn one (``reason`` a code, ``message`` one line with the fix). Replaced by each
    attempt, removed when the baseline is learned (docs/drift.md)."""

    __tablename__ = "drift_baseline_attempt"

    device_id: str = Field(foreign_key="device.device_id", primary_key=True, max_length=63)
    camera_id: str = Field(primary_key=True, max_length=64)
    condition: str = Field(primary_key=True, max_length=16)
    release_id: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=32)
    message: str = Field(max_length=512)
    windows: int = 0
    windows_needed: int = 0
    busy_windows: int | None = None
    first_tried_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    tried_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
