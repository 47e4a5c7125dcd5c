"""What devices send: telemetry windows (and merge watermarks), events, snapshots, samples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from ._types import BigId, UTCDateTime, _json, utc_now


def _instance() -> Any:
    # '' for agents older than instance ids: one (device, '', seq) space, as before.
    return Field(default="", max_length=32, sa_column_kwargs={"server_default": ""})


class TelemetryWindowRecord(SQLModel, table=True):
    """One ingested ``TelemetryWindow``; unique on (device_id, instance, seq) so ingest is
    idempotent and a re-imaged agent (new instance, seq from 0) is not taken for a copy.
    ``received_at`` (the control plane's clock) orders and ages windows; the agent's
    ``window_start``/``window_end`` are kept as information."""

    __tablename__ = "telemetry_window"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "instance", "seq", name="uq_telemetry_device_seq"),
        sa.Index("ix_telemetry_device_start", "device_id", "window_start"),
        sa.Index("ix_telemetry_received", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    device_id: str = Field(foreign_key="device.device_id", max_length=63)
    instance: str = _instance()
    seq: int = Field(sa_type=sa.BigInteger)
    window_start: datetime = Field(sa_type=UTCDateTime)
    window_end: datetime = Field(sa_type=UTCDateTime)
    release_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    payload: dict[str, Any] = _json()
    # What the fleet page charts, written beside the payload (``chart_figures``): frames
    # inferred per second over the window's cameras, the worst camera's p95 latency.
    inference_fps: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    latency_p95_ms: float | None = None
    # What the drift analysis reads of the window, binned at ingest (``drift.stored_rows``):
    # its cameras' counts on the release's profile bins, and their other analysed fields.
    drift_rows: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    drift_cameras: str | None = Field(default=None, sa_type=sa.Text)


class TelemetryWatermark(SQLModel, table=True):
    """Per agent instance, the highest seq that retention merged into coarser windows: a
    window at or below it is refused at ingest (it could be a re-send of a merged one)."""

    __tablename__ = "telemetry_watermark"

    device_id: str = Field(primary_key=True, max_length=63)
    instance: str = Field(primary_key=True, max_length=32)
    merged_seq: int = Field(sa_type=sa.BigInteger)


# A rollup's counts: PostgreSQL adds two arrays in the upsert itself (several ingest
# workers may add into one row at once); SQLite has one writer, which adds in Python.
RollupCounts = sa.JSON().with_variant(postgresql.ARRAY(postgresql.DOUBLE_PRECISION), "postgresql")


class TelemetryRollup(SQLModel, table=True):
    """Windows added up per receipt hour or day (``grain``), device, release, camera and
    condition, written by ingest in the windows' transaction. A bucket ``b`` holds the
    windows received in (b, b + grain]. ``camera_id`` '' (and ``condition`` ''): the
    device's whole windows (what an analysis merges); other rows: one camera in one
    condition. ``counts``: the flat vector of ``drift.summary.Summary`` on the release's
    profile bins ([] for a release with no profile); ``windows`` counted in it,
    ``mismatched`` windows left out (other bins); ``first_start``/``last_end``: the span
    of every window received in the bucket. Ingest writes hour rows only (``folded``
    false); a job folds a past day's hours into its day rows and marks them ``folded``
    (``services.telemetry_rollup_fold``); ingest adding into an hour clears it again."""

    __tablename__ = "telemetry_rollup"
    __table_args__ = (
        sa.Index("ix_rollup_camera", "device_id", "camera_id", "grain", "bucket"),
        # hours not folded yet: a handful of probes tell readers which days to read as hours
        sa.Index("ix_rollup_unfolded", "bucket", postgresql_where=sa.text("NOT folded"),
                 sqlite_where=sa.text("folded = 0")),
        # Ingest updates each hour row once a window: room in the page for the new version
        # keeps the update HOT (no new index entries; migration 0021).
        {"postgresql_with": {"fillfactor": 60}},
    )

    grain: str = Field(primary_key=True, max_length=4)
    bucket: datetime = Field(primary_key=True, sa_type=UTCDateTime)
    device_id: str = Field(primary_key=True, max_length=63)
    release_id: str = Field(primary_key=True, max_length=64)
    camera_id: str = Field(primary_key=True, max_length=64)
    condition: str = Field(primary_key=True, max_length=16)
    windows: int = Field(sa_type=sa.BigInteger)
    mismatched: int = Field(sa_type=sa.BigInteger)
    first_start: datetime = Field(sa_type=UTCDateTime)
    last_end: datetime = Field(sa_type=UTCDateTime)
    counts: list[float] = Field(sa_column=sa.Column(RollupCounts, nullable=False))
    folded: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


class EventRecord(SQLModel, table=True):
    """One ingested ``DeviceEvent``; unique on (device_id, instance, seq)."""

    __tablename__ = "device_event"
    __table_args__ = (
        sa.UniqueConstraint("device_id", "instance", "seq", name="uq_event_device_seq"),
        sa.Index("ix_event_device_at", "device_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    device_id: str = Field(foreign_key="device.device_id", max_length=63)
    instance: str = _instance()
    seq: int = Field(sa_type=sa.BigInteger)
    kind: str = Field(max_length=32)
    at: datetime = Field(sa_type=UTCDateTime)
    release_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    payload: dict[str, Any] = _json()


class CameraSnapshot(SQLModel, table=True):
    """A snapshot an operator asked for: the request, then the device's answer (its JPEG is
    in the artifact store). A device may answer only a command it was sent."""

    __tablename__ = "camera_snapshot"
    __table_args__ = (sa.Index("ix_snapshot_device_camera", "device_id", "camera_id"),)

    command_id: str = Field(primary_key=True, max_length=64)
    device_id: str = Field(foreign_key="device.device_id", max_length=63)
    camera_id: str = Field(max_length=64)
    requested_by: str = Field(max_length=128)
    requested_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    width: int | None = None
    height: int | None = None
    boxes: list[dict[str, Any]] = _json()
    image_sha256: str | None = Field(default=None, max_length=64)


class Sample(SQLModel, table=True):
    """A frame an agent uploaded for labelling (active learning); the JPEG lives in the
    content store by sha256. ``status``: new -> labelled | rejected."""

    __tablename__ = "sample"
    __table_args__ = (sa.Index("ix_sample_status_created", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    device_id: str = Field(foreign_key="device.device_id", index=True, max_length=63)
    camera_id: str = Field(max_length=64)
    release_id: str | None = Field(default=None, max_length=64, index=True)
    model_version: str | None = Field(default=None, max_length=128)
    predicted_label: str = Field(max_length=64)
    confidence: float
    predictions: dict[str, Any] = _json()
    image_sha256: str = Field(max_length=64)
    image_size: int
    captured_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(default="new", max_length=16)
    label: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=1024)
    # Where an agent mined a candidate negative (rejected crop, non-animal track, the
    # background); null for a low-confidence sample.
    candidate: str | None = Field(default=None, max_length=16)
    # The dataset version a labelled sample went into (null: not used yet).
    dataset_version: str | None = Field(default=None, max_length=128, index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=128)


class DeadLetter(SQLModel, table=True):
    """A received message that failed to store alone with a non-transient error: kept here,
    not dropped, before it is acknowledged, so an operator can replay it once the cause is
    fixed (``parkwatch dead-letters``). No foreign key: the device may be what failed."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    kind: str = Field(max_length=16)
    device_id: str = Field(max_length=63)
    topic: str | None = Field(default=None, max_length=255)
    message: str = Field(sa_type=sa.Text)  # the validated message, as JSON
    error: str = Field(max_length=1024)  # the last failure, one line
