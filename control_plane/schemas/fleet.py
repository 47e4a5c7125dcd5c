"""Fleet bodies and answers: devices and their cameras, labels, groups, telemetry windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from protocols.topics import DEVICE_ID_PATTERN

from .common import LabelKey, LabelValue, Name, Page, RequestBody


class CameraConfig(RequestBody):
    """One camera for the generated agent config (optional at provisioning)."""

    camera_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    source: str = Field(min_length=1, max_length=1024)
    loop: bool = False
    sample_fps: float = Field(5.0, gt=0, le=120)


class DeviceCreate(RequestBody):
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    cameras: list[CameraConfig] = Field(default_factory=list, max_length=64)
    agent_data_dir: str = Field("/var/lib/parkwatch-agent", max_length=1024)


class DeviceReissue(RequestBody):
    """New credentials for an existing device (rotation, new hardware, back in service)."""

    cameras: list[CameraConfig] = Field(default_factory=list, max_length=64)
    agent_data_dir: str = Field("/var/lib/parkwatch-agent", max_length=1024)
    reason: str = Field(min_length=1, max_length=512,
                        description="Why (rotation, hardware replaced, ...): for the audit log.")


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
    clock_skew_s: float | None = Field(
        None, description="The device's clock minus the control plane's, in seconds, measured "
        "when its last `online` arrived (positive: the device is ahead). Information only: "
        "deadlines and ordering use the control plane's receipt time.",
    )
    decommissioned_at: datetime | None = Field(
        None, description="When the device was decommissioned; null while in service.")


class DeviceLabelsUpdate(RequestBody):
    set: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    remove: list[LabelKey] = Field(default_factory=list, max_length=64)


class GroupCreate(RequestBody):
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


class TelemetryWindowPublic(BaseModel):
    device_id: str
    seq: int
    window_start: datetime
    window_end: datetime
    release_id: str | None
    received_at: datetime
    window: dict[str, Any]


class ReleaseCount(BaseModel):
    release_id: str
    devices: int = Field(description="Devices reporting it running (active, or in shadow).")
    healthy: int = Field(description="Of those, how many report it healthy.")
    desired_by: int = Field(0, description="Devices told to run it (desired state).")


class WindowPoint(BaseModel):
    """One telemetry window reduced to what the fleet charts draw."""

    device_id: str
    window_end: datetime
    inference_fps: float = Field(description="Frames inferred per second, all its cameras.")
    latency_p95_ms: float | None = Field(description="Worst camera's inference p95, ms.")


class FleetSummary(BaseModel):
    """The fleet page at a glance, counted by the store: its size does not grow with the
    fleet (the device table pages through ``GET /devices``)."""

    devices: int
    online: int
    cameras_up: int
    cameras_not_up: int
    releases: list[ReleaseCount] = Field(description="Releases running, most devices first.")
    shadows: list[ReleaseCount] = Field(description="Releases in shadow mode.")
    windows: list[WindowPoint] = Field(description="The newest windows received, newest "
                                       "first (at most `windows` of the query).")
    counted_at: datetime = Field(
        description="When the device figures above were counted: they are kept for "
        "fleet_counts_max_age_seconds, so a page load does not scan the device table.")
    counts_age_s: float = Field(description="How old those figures were when this answer "
                                "was made, in seconds (the windows are read each time).")


class FleetPage(BaseModel):
    """Everything the dashboard's fleet page shows on arrival, in one answer: one request,
    one authentication and a few statements instead of four calls of their own."""

    fleet: FleetSummary
    devices: Page[DevicePublic] = Field(description="The device table's page, by id (as "
                                        "`GET /devices?limit=&offset=`).")
    open_alerts: int = Field(description="Alerts in state open (as `GET /alerts?state=open`'s "
                             "total).")
    dead_letters: int = Field(description="Messages ingest could not store (as "
                              "`GET /dead-letters`' total).")
