"""Rollout bodies and answers; the policy a rollout follows is ``config.rollout_policy``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from protocols.topics import DEVICE_ID_PATTERN

from ..config.rollout_policy import GateFailurePolicy, RolloutPolicy, WaveStep
from .common import LabelKey, LabelValue, RequestBody, RolloutMode


class RolloutCreate(RequestBody):
    release_id: str = Field(min_length=1, max_length=64)
    devices: list[Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]] | None = Field(
        None, description="Device ids; null: every provisioned device.", max_length=100_000
    )
    group: str | None = Field(
        None, min_length=1, max_length=64, description="Target a device group instead."
    )
    labels: dict[LabelKey, LabelValue] | None = Field(
        None, max_length=64, description="Target devices whose labels all match instead."
    )
    mode: RolloutMode = "active"
    supersede: bool = Field(
        False,
        description="Take devices away from their active rollout; without it such a target "
        "is refused (409).",
    )
    waves: list[WaveStep] | None = Field(None, min_length=1, max_length=32)
    max_devices_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    approval_after_wave: int | None = Field(None, ge=1, le=32)
    shadow_phase: bool | None = None
    shadow_fraction: float | None = Field(None, ge=0.01, le=1)
    on_gate_failure: GateFailurePolicy | None = None
    gates: dict[str, Any] | None = Field(
        None, max_length=32, description="Overrides of GatePolicy fields."
    )


class RolloutAction(RequestBody):
    reason: str | None = Field(None, max_length=512, description="Recorded in the audit log.")


class GateResultPublic(BaseModel):
    name: str
    status: Literal["pass", "fail", "wait", "skip"]
    detail: str
    value: float | None = None
    limit: float | None = None


class RolloutWavePublic(BaseModel):
    number: int
    mode: str
    state: str
    device_count: int
    acknowledged: int
    pending: int
    failed: int
    states: dict[str, int] = Field(
        default_factory=dict, description="The wave's devices by state (all of them).")
    started_at: datetime | None
    finished_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    gates: list[GateResultPublic]


class RolloutDevicePublic(BaseModel):
    device_id: str
    state: str
    revision: int
    wave: int
    detail: str | None
    updated_at: datetime


class RolloutPublic(BaseModel):
    rollout_id: str
    release_id: str
    mode: str
    state: str
    current_wave: int
    paused_reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    policy: RolloutPolicy
    waves: list[RolloutWavePublic]
    device_count: int = Field(0, description="Devices the rollout targets.")
    device_states: dict[str, int] = Field(
        default_factory=dict, description="Every targeted device by state.")
    devices: list[RolloutDevicePublic] = Field(
        description="One page of the devices, by id (``device_limit``, ``device_offset``).")
