"""The store: SQLModel tables. API bodies live in ``schemas``; operations in
``services`` and ``rollouts``.

Every table is created by an explicit Alembic migration (``migrations/versions``);
a test checks that autogenerate finds no difference between the two.
Timestamps are timezone-aware UTC on every backend (``UTCDateTime``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; reads them back aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=nullable))


# Row ids of the high-volume tables: BIGINT on PostgreSQL; SQLite's rowid alias must be
# spelled INTEGER (a BIGINT primary key there would not autoincrement).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Model(SQLModel, table=True):
    __tablename__ = "model"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_model_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    # The highest version number ever given, so a deleted version's number is never reused.
    last_number: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class ModelVersion(SQLModel, table=True):
    """One registered version; ``spec`` is the ``ModelVersionCreate`` as sent."""

    __tablename__ = "model_version"
    __table_args__ = (sa.UniqueConstraint("model_id", "number", name="uq_model_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    number: int
    version: str = Field(max_length=32)
    primary_sha256: str = Field(max_length=64)
    spec: dict[str, Any] = _json()
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Artifact(SQLModel, table=True):
    __tablename__ = "artifact"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int = Field(sa_type=sa.BigInteger)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Release(SQLModel, table=True):
    """A signed manifest for one model version; ``manifest`` is the ``SignedManifest`` JSON."""

    __tablename__ = "release"

    release_id: str = Field(primary_key=True, max_length=64)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    model_name: str = Field(max_length=64)
    model_version: str = Field(max_length=32)
    key_id: str = Field(max_length=16)
    primary_sha256: str = Field(max_length=64)
    manifest: dict[str, Any] = _json()
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Device(SQLModel, table=True):
    """A provisioned device: its labels, liveness, desired state and last reported state."""

    __tablename__ = "device"

    device_id: str = Field(primary_key=True, max_length=63)
    labels: dict[str, str] = _json()
    online: bool = False
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # our receipt time
    status_session: str | None = Field(default=None, max_length=48)  # DeviceStatus.session
    # The device's clock minus ours when its last ``online`` arrived (seconds): shown and
    # alerted on, never used to order or age anything.
    clock_skew_s: float | None = None
    # Set by `devices decommission`: its tokens are revoked and its broker login goes at the
    # next `mqtt acl`; its history stays. `devices reissue` brings it back.
    decommissioned_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    agent_version: str | None = Field(default=None, max_length=32)
    desired_release_id: str | None = Field(default=None, max_length=64)
    desired_revision: int = Field(default=0, sa_type=sa.BigInteger)
    desired_mode: str | None = Field(default=None, max_length=16)
    desired_rollout_id: str | None = Field(default=None, max_length=64)
    desired_fallback_release_id: str | None = Field(default=None, max_length=64)
    desired_issued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reported: dict[str, Any] | None = _json(nullable=True)
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class StoreEpoch(SQLModel, table=True):
    """The store's epoch (one row): desired states carry it, and it grows when a device
    has seen a desired state the store does not hold (a store restored from a backup)."""

    __tablename__ = "store_epoch"

    id: int = Field(default=1, primary_key=True)
    epoch: int = Field(default=0, sa_type=sa.BigInteger)
    reason: str | None = Field(default=None, max_length=1024)
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """A bearer token; only the sha256 of the secret is stored."""

    __tablename__ = "api_token"
    __table_args__ = (sa.UniqueConstraint("token_sha256", name="uq_api_token_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    token_sha256: str = Field(max_length=64)
    name: str = Field(max_length=128)
    scopes: str = Field(max_length=128)  # space-separated
    device_id: str | None = Field(
        default=None, foreign_key="device.device_id", index=True, max_length=63
    )
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    revoked: bool = False


class Rollout(SQLModel, table=True):
    __tablename__ = "rollout"

    rollout_id: str = Field(primary_key=True, max_length=64)
    release_id: str = Field(foreign_key="release.release_id", index=True, max_length=64)
    mode: str = Field(max_length=16)
    state: str = Field(max_length=32)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    # The ``RolloutPolicy`` it runs under (null: rows from before waves existed),
    # the wave it is in, and why it is paused.
    policy: dict[str, Any] | None = _json(nullable=True)
    current_wave: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    paused_reason: str | None = Field(default=None, max_length=1024)


class RolloutWave(SQLModel, table=True):
    """One wave of a rollout (0: the optional shadow phase) and its stored gate results."""

    __tablename__ = "rollout_wave"
    __table_args__ = (sa.UniqueConstraint("rollout_id", "number", name="uq_rollout_wave"),)

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: str = Field(foreign_key="rollout.rollout_id", index=True, max_length=64)
    number: int
    mode: str = Field(max_length=16)
    state: str = Field(max_length=32)
    device_count: int = 0
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    gates: list[dict[str, Any]] | None = _json(nullable=True)
    approved_by: str | None = Field(default=None, max_length=128)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RolloutDevice(SQLModel, table=True):
    """One device's progress within one rollout (``services.rollouts`` has the states)."""

    __tablename__ = "rollout_device"
    __table_args__ = (sa.UniqueConstraint("rollout_id", "device_id", name="uq_rollout_device"),)

    id: int | None = Field(default=None, primary_key=True)
    rollout_id: str = Field(foreign_key="rollout.rollout_id", index=True, max_length=64)
    device_id: str = Field(foreign_key="device.device_id", index=True, max_length=63)
    wave: int = 0
    state: str = Field(max_length=32)
    revision: int = Field(sa_type=sa.BigInteger)
    detail: str | None = Field(default=None, max_length=1024)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    # When the desired state went out, when the device acknowledged it, and the
    # release it ran before (what a rollback returns it to).
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    fallback_release_id: str | None = Field(default=None, max_length=64)


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


class TelemetryWatermark(SQLModel, table=True):
    """Per agent instance, the highest seq that retention merged into coarser windows: a
    window at or below it is refused at ingest (it could be a re-send of a merged one)."""

    __tablename__ = "telemetry_watermark"

    device_id: str = Field(primary_key=True, max_length=63)
    instance: str = Field(primary_key=True, max_length=32)
    merged_seq: int = Field(sa_type=sa.BigInteger)


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


class AuditEntry(SQLModel, table=True):
    """Who did what to which object, and when; written in the same transaction as the change."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    who: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=256)
    detail: dict[str, Any] = _json()


class ModelAlias(SQLModel, table=True):
    """A movable name (``champion``, ``challenger``, ...) for one version of a model.

    Every set, move and removal is written to the audit log (who, from, to).
    """

    __tablename__ = "model_alias"
    __table_args__ = (sa.UniqueConstraint("model_id", "alias", name="uq_model_alias"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="model.id", index=True)
    alias: str = Field(max_length=64)
    model_version_id: int = Field(foreign_key="model_version.id", index=True)
    updated_by: str = Field(max_length=128)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class DatasetVersion(SQLModel, table=True):
    """A validated, versioned dataset the trainer used (``Lineage.dataset_version`` names it)."""

    __tablename__ = "dataset_version"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_dataset_version"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    version: str = Field(max_length=64)
    manifest_sha256: str | None = Field(default=None, max_length=64)
    sample_count: int = Field(default=0, sa_type=sa.BigInteger)
    class_counts: dict[str, int] = _json()
    source: str | None = Field(default=None, max_length=1024)
    detail: dict[str, Any] = _json()
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class DeviceGroup(SQLModel, table=True):
    """A named label selector: a device belongs when every ``key=value`` of it matches."""

    __tablename__ = "device_group"

    name: str = Field(primary_key=True, max_length=64)
    selector: dict[str, str] = _json()
    description: str | None = Field(default=None, max_length=1024)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


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
    # The dataset version a labelled sample went into (null: not used yet).
    dataset_version: str | None = Field(default=None, max_length=128, index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_by: str | None = Field(default=None, max_length=128)


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
