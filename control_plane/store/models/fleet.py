"""The fleet's tables: devices, the store's epoch, API tokens, device groups, the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ._types import UTCDateTime, _json, utc_now


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
    # What ``reported`` says, in columns the fleet page counts with (written with it).
    active_release_id: str | None = Field(default=None, max_length=64)
    active_stage: str | None = Field(default=None, max_length=16)
    shadow_release_id: str | None = Field(default=None, max_length=64)
    shadow_stage: str | None = Field(default=None, max_length=16)
    cameras_up: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cameras_not_up: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
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


class DeviceGroup(SQLModel, table=True):
    """A named label selector: a device belongs when every ``key=value`` of it matches."""

    __tablename__ = "device_group"

    name: str = Field(primary_key=True, max_length=64)
    selector: dict[str, str] = _json()
    description: str | None = Field(default=None, max_length=1024)
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class AuditEntry(SQLModel, table=True):
    """Who did what to which object, and when; written in the same transaction as the change."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    who: str = Field(max_length=128)
    action: str = Field(max_length=64, index=True)
    target: str = Field(max_length=256)
    detail: dict[str, Any] = _json()
