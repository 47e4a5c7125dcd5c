"""MQTT payload models (DESIGN.md section 3).

Every payload carries ``schema`` (the protocol version) and is validated on
receipt with :func:`decode`; anything else raises :class:`ProtocolError`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from .topics import DEVICE_ID_PATTERN

SCHEMA_VERSION: Final = "parkwatch/v1"

DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
# Release and camera ids are ours or the operator's; bounded so one field cannot fill a payload.
ReleaseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
CameraId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]
ShortText = Annotated[str, Field(max_length=1024)]
Counts = Annotated[list[NonNegativeInt], Field(max_length=256)]

ReleaseMode = Literal["active", "shadow"]
ReleaseStage = Literal["installed", "loaded", "warmed", "healthy", "failed", "rolled_back"]
CameraState = Literal["up", "reconnecting", "down"]
EventKind = Literal[
    "detection",
    "download_started",
    "download_verified",
    "activated",
    "activation_failed",
    "rolled_back",
    "camera_state",
    "telemetry_dropped",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class WireModel(BaseModel):
    """Base of every payload: strict about unknown keys, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["parkwatch/v1"] = Field(default=SCHEMA_VERSION, alias="schema")


class AgentSettings(BaseModel):
    """Agent settings the control plane may set through the desired state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_seconds: Annotated[float, Field(ge=1, le=3600)] = 60.0
    shadow_fraction: Annotated[float, Field(ge=0, le=1)] = 0.25
    upload_samples: bool = False


class DesiredState(WireModel):
    """``devices/{id}/desired``: what the control plane wants the device to run."""

    device_id: DeviceId
    revision: NonNegativeInt
    release_id: ReleaseId | None = None
    mode: ReleaseMode = "active"
    # In shadow mode the device keeps serving this release and only mirrors release_id.
    fallback_release_id: ReleaseId | None = None
    rollout_id: Annotated[str, Field(max_length=64)] | None = None
    issued_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime | None = None
    settings: AgentSettings = AgentSettings()


class ReleaseStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    release_id: ReleaseId
    model_version: Annotated[str, Field(max_length=128)]
    stage: ReleaseStage
    since: datetime


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    from_release_id: ReleaseId | None
    to_release_id: ReleaseId | None
    ok: bool
    reason: ShortText
    at: datetime


class CameraStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: CameraId
    state: CameraState
    since: datetime | None = None
    detail: ShortText | None = None


class ReportedState(WireModel):
    """``devices/{id}/reported``: what the device runs now and how it got there."""

    device_id: DeviceId
    agent_version: Annotated[str, Field(max_length=32)]
    desired_revision: NonNegativeInt | None = None
    active: ReleaseStatus | None = None
    previous_release_id: ReleaseId | None = None
    shadow: ReleaseStatus | None = None
    last_transition: Transition | None = None
    cameras: Annotated[list[CameraStatus], Field(max_length=64)] = []
    updated_at: datetime = Field(default_factory=utc_now)


class DeviceStatus(WireModel):
    """``devices/{id}/status``: ``online`` on connect, ``offline`` as the Last Will."""

    device_id: DeviceId
    state: Literal["online", "offline"]
    agent_version: Annotated[str, Field(max_length=32)] | None = None
    at: datetime = Field(default_factory=utc_now)


class Percentiles(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    p50: NonNegativeFloat
    p95: NonNegativeFloat
    p99: NonNegativeFloat


class ShadowSummary(BaseModel):
    """How a shadow candidate compared with the active model on the same frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release_id: ReleaseId
    frames_compared: NonNegativeInt
    agreements: NonNegativeInt
    errors: NonNegativeInt = 0
    class_counts: Annotated[dict[Label, NonNegativeInt], Field(max_length=256)] = {}
    latency_ms: Percentiles | None = None


class CameraWindow(BaseModel):
    """One camera's mergeable summary over one telemetry window.

    Histogram bins follow the release manifest's reference profile, so windows
    from many devices and the training reference can be added up and compared.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: CameraId
    state: CameraState
    frames_captured: NonNegativeInt = 0
    frames_inferred: NonNegativeInt = 0
    frames_skipped: NonNegativeInt = 0  # skipped on purpose (sampling, motion gate)
    frames_lost: NonNegativeInt = 0  # overwritten before inference could take them
    errors: NonNegativeInt = 0
    reconnects: NonNegativeInt = 0
    stalls: NonNegativeInt = 0
    capture_fps: NonNegativeFloat = 0.0
    inference_fps: NonNegativeFloat = 0.0
    frame_age_ms: Percentiles | None = None
    inference_ms: Percentiles | None = None
    e2e_ms: Percentiles | None = None
    class_counts: Annotated[dict[Label, NonNegativeInt], Field(max_length=256)] = {}
    confidence_hist: Counts = []
    input_hists: Annotated[dict[Label, Counts], Field(max_length=16)] = {}
    embedding_hists: Annotated[list[Counts], Field(max_length=16)] = []


class TelemetryWindow(WireModel):
    """``devices/{id}/telemetry``: one window; ``seq`` makes ingest idempotent."""

    device_id: DeviceId
    seq: NonNegativeInt
    release_id: ReleaseId | None = None
    model_version: Annotated[str, Field(max_length=128)] | None = None
    window_start: datetime
    window_end: datetime
    cameras: Annotated[list[CameraWindow], Field(max_length=64)] = []
    shadow: ShadowSummary | None = None
    cpu_percent: NonNegativeFloat = 0.0
    rss_bytes: NonNegativeInt = 0
    dropped_windows: NonNegativeInt = 0  # lost to the outbox's oldest-first drop policy


class DeviceEvent(WireModel):
    """``devices/{id}/events``: detections and release lifecycle events."""

    device_id: DeviceId
    seq: NonNegativeInt
    kind: EventKind
    at: datetime = Field(default_factory=utc_now)
    release_id: ReleaseId | None = None
    camera_id: CameraId | None = None
    label: Label | None = None
    confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    detail: ShortText | None = None
