"""API bodies and answers (docs/contracts.md). Tables are in ``models``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from protocols.topics import DEVICE_ID_PATTERN

T = TypeVar("T")
Scope = Literal["read", "operate", "admin", "device"]
RolloutMode = Literal["active", "shadow"]
LabelKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")]
LabelValue = Annotated[str, Field(max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


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


class ReleaseCreate(_Body):
    model_name: str = Field(min_length=1, max_length=64)
    version: str | None = Field(None, description="Model version; unset: the latest.")


class ReleasePublic(BaseModel):
    release_id: str
    model_name: str
    model_version: str
    key_id: str
    primary_sha256: str
    created_at: datetime


class CameraConfig(_Body):
    """One camera for the generated agent config (optional at provisioning)."""

    camera_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    source: str = Field(min_length=1, max_length=1024)
    loop: bool = False
    sample_fps: float = Field(5.0, gt=0, le=120)


class DeviceCreate(_Body):
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=64)
    agent_data_dir: str = Field("/var/lib/parkwatch-agent", max_length=1024)


class DeviceProvisioned(BaseModel):
    device_id: str
    token: str
    agent_config_toml: str


class DevicePublic(BaseModel):
    device_id: str
    labels: dict[str, str]
    online: bool
    last_seen: datetime | None
    agent_version: str | None
    desired_release_id: str | None
    desired_revision: int
    desired_mode: str | None
    current_release_id: str | None = Field(
        None, description="The release the device reports as active."
    )
    reported: dict[str, Any] | None
    created_at: datetime


# Rollout bodies and answers live in ``schemas_rollouts``.


class TelemetryWindowPublic(BaseModel):
    device_id: str
    seq: int
    window_start: datetime
    window_end: datetime
    release_id: str | None
    received_at: datetime
    window: dict[str, Any]


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    who: str
    action: str
    target: str
    detail: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "error"]
    mqtt: Literal["connected", "disconnected", "disabled"]
    embedded_broker: bool
