"""A rollout's tables: the rollout, its waves, and each device's row in it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ._types import UTCDateTime, _json, utc_now


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
