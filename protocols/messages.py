"""MQTT payload models (docs/architecture.md, "The wire contract").

Every payload carries ``schema`` (the protocol version) and is validated on
receipt with :func:`decode`; anything else raises :class:`ProtocolError`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from .topics import DEVICE_ID_PATTERN

SCHEMA_VERSION: Final = "parkwatch/v1"

DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN)]
# Release and camera ids are ours or the operator's; bounded so one field cannot fill a payload.
ReleaseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
CameraId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]
ShortText = Annotated[str, Field(max_length=1024)]
# Chosen once when an agent's outbox is created: a re-imaged agent (data folder lost)
# numbers its windows and events from 0 again under a new instance, so (device, instance,
# seq) never collides with what the old one sent.
InstanceId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Counts = Annotated[list[NonNegativeInt], Field(max_length=256)]

ReleaseMode = Literal["active", "shadow"]
ReleaseStage = Literal["installed", "loaded", "warmed", "healthy", "failed", "rolled_back"]
CameraState = Literal["up", "reconnecting", "down"]
# How a camera's frames are looked at: motion regions classified one crop each (a wide
# park shot), or the whole frame resized to the model's input (a close-up camera).
AnalysisMode = Literal["regions", "frame"]
# The light (and weather) a camera sees, from its input statistics: windows and baselines
# are kept per condition, so nightfall and rain are conditions and not drift
# (docs/architecture.md, telemetry). A control plane that predates a value refuses a
# window that uses it: upgrade control planes before agents.
Condition = Literal["day", "dusk", "night", "ir", "rain"]
EventKind = Literal[
    "detection",
    "animal_appeared",
    "animal_left",
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


def added(default: Any = None, **constraints: Any) -> Any:
    """A field added to a ``parkwatch/v1`` payload after peers shipped without it.

    It is left out of the wire while it holds its default, so a peer of the previous
    version (whose models forbid unknown keys) still reads every payload that does not
    use the new field; a newer peer fills the default back in.
    """
    if isinstance(default, list | dict):
        empty = type(default)
        return Field(default_factory=empty, exclude_if=lambda v: v == empty(), **constraints)
    return Field(default=default, exclude_if=lambda v: v == default, **constraints)


class WireModel(BaseModel):
    """Base of every payload: strict about unknown keys, immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["parkwatch/v1"] = Field(default=SCHEMA_VERSION, alias="schema")


# Where an agent mined a candidate negative it uploads as a sample (``candidate`` of
# ``POST /api/v1/samples``): a crop the model called a background label, a crop of a
# track that never became an animal, or a crop of a frame where nothing moves.
NegativeSource = Literal["rejected", "track", "background"]
NEGATIVE_SOURCES: tuple[NegativeSource, ...] = ("rejected", "track", "background")


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
    # The store's epoch: it grows when the control plane finds its store went back in time
    # (restored from a backup), and orders before ``revision``: (epoch, revision) grows.
    epoch: NonNegativeInt = added(0)
    # The control plane allows a move to a release older than the one the device serves.
    rollback: bool = added(False)


class SignedDesiredState(WireModel):
    """``devices/{id}/desired_signed``: a desired state as the control plane signed it.

    ``payload`` is base64 of a ``DesiredState``'s JSON bytes, verified before it is
    parsed (``protocols.signing.verify_desired``), with the keys that verify manifests.
    The plain ``desired`` topic keeps carrying the state for agents older than this.
    """

    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    payload: Annotated[str, Field(max_length=24 * 1024)]
    signature: Annotated[str, Field(max_length=128)]


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
    desired_epoch: NonNegativeInt | None = added()  # the epoch of that revision
    active: ReleaseStatus | None = None
    previous_release_id: ReleaseId | None = None
    shadow: ReleaseStatus | None = None
    last_transition: Transition | None = None
    cameras: Annotated[list[CameraStatus], Field(max_length=64)] = []
    updated_at: datetime = Field(default_factory=utc_now)


# One MQTT connection of one agent process: ``{process}-{n}``, a random id per process
# and a counter of its connections. The control plane orders status messages by it, never
# by ``at`` (a device's clock, and a Last Will's ``at`` is when its connection began).
SessionId = Annotated[str, Field(pattern=r"^[0-9a-f]{8,32}-[0-9]{1,12}$")]


class DeviceStatus(WireModel):
    """``devices/{id}/status``: ``online`` on connect, ``offline`` as the Last Will."""

    device_id: DeviceId
    state: Literal["online", "offline"]
    agent_version: Annotated[str, Field(max_length=32)] | None = None
    at: datetime = Field(default_factory=utc_now)  # the device's clock: information only
    session: SessionId | None = added()  # None: an agent older than sessions


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


# Region telemetry bins, fixed here so every agent's windows add up across the fleet.
# A region's width as a fraction of the frame's width:
REGION_WIDTH_EDGES: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0)
# ``regions_per_frame[k]`` counts frames with k regions; the last bin counts k or more.
REGIONS_PER_FRAME_BINS = 9
# Where animals were: track centres per classified frame on a coarse grid, row-major.
HEATMAP_COLS, HEATMAP_ROWS = 16, 12
# Where the picture's edges lie: per cell of a coarse grid (row-major), each frame's share
# of its edge pixels in hundredths, summed over the window's frames.
EDGE_COLS, EDGE_ROWS = 4, 3
# Where the background model's edges lie at the window's end: edge pixels per cell of a
# finer grid (row-major). Animals passing are not in the background; the view is.
BACKGROUND_COLS, BACKGROUND_ROWS = 8, 6

# A box in a frame: x, y, width, height as fractions of the frame's width and height.
Box = tuple[
    Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)],
    Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)],
]
Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


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
    # Regions and tracks. Every field below is optional with an empty default, so windows
    # of agents that classify whole frames (and of agents older than regions) stay valid.
    # In regions mode the counts and histograms above are over crops: what the model saw.
    mode: AnalysisMode | None = added()
    condition: Condition | None = added()
    regions_classified: NonNegativeInt = added(0)
    regions_per_frame: list[NonNegativeInt] = added([], max_length=REGIONS_PER_FRAME_BINS)
    region_width_hist: list[NonNegativeInt] = added([], max_length=len(REGION_WIDTH_EDGES) - 1)
    frames_without_animal: NonNegativeInt = added(0)
    # Distinct animals (confirmed tracks) seen in the window, by their voted label.
    animals: dict[Label, NonNegativeInt] = added({}, max_length=256)
    animal_heatmap: list[NonNegativeInt] = added([], max_length=HEATMAP_COLS * HEATMAP_ROWS)
    # The scene's layout (EDGE_COLS x EDGE_ROWS): a camera turned or zoomed moves it.
    edge_layout: list[NonNegativeInt] = added([], max_length=EDGE_COLS * EDGE_ROWS)
    # The background's outlines (BACKGROUND_COLS x BACKGROUND_ROWS) when the window closed.
    background_edges: list[NonNegativeInt] = added(
        [], max_length=BACKGROUND_COLS * BACKGROUND_ROWS)


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
    dropped_events: NonNegativeInt = added(0)  # events lost likewise
    instance: InstanceId | None = added()  # the outbox that numbered seq (None: older agents)


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
    # animal_appeared / animal_left: one animal followed across frames (a track).
    track_id: NonNegativeInt | None = added()
    box: Box | None = added()  # where it is (appeared) or was last seen (left)
    dwell_seconds: NonNegativeFloat | None = added()
    path: Annotated[list[Point], Field(max_length=32)] | None = added()  # its centre, sampled
    instance: InstanceId | None = added()  # as in TelemetryWindow


class SnapshotBox(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    box: Box
    label: Label
    confidence: Annotated[float, Field(ge=0, le=1)]
    track_id: NonNegativeInt | None = None


class DeviceCommand(WireModel):
    """``devices/{id}/commands``: a one-off request to the device (not retained).

    ``snapshot``: send the latest frame of ``camera_id`` with its boxes, once, over HTTP
    (``POST /api/v1/snapshots``). Frames never stream; an operator asks for each one.
    """

    device_id: DeviceId
    command_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    kind: Literal["snapshot"]
    camera_id: CameraId
    issued_at: datetime = Field(default_factory=utc_now)
    expires_at: datetime | None = None


class Snapshot(WireModel):
    """A device's answer to a ``snapshot`` command: one JPEG and the boxes it saw on it."""

    device_id: DeviceId
    command_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    camera_id: CameraId
    captured_at: datetime
    width: Annotated[int, Field(ge=1, le=8192)]
    height: Annotated[int, Field(ge=1, le=8192)]
    boxes: Annotated[list[SnapshotBox], Field(max_length=64)] = []
    image_jpeg_b64: Annotated[str, Field(max_length=4 * 1024 * 1024)]
