"""One camera's settings: where its frames come from, how often and how they are looked at.

Part of the agent's settings (``config.AgentSettings.cameras``); every field is listed in
docs/agent.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CameraConfig(BaseModel):
    """One camera: where its frames come from and how often the agent classifies them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_id: str = Field(
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Camera name, unique on this device (appears in telemetry and events).",
    )
    source: str = Field(
        min_length=1,
        description="A video file path, an rtsp:// or http(s):// URL, or a device index ('0').",
    )
    loop: bool = Field(default=False, description="Files only: start again at the end "
                       "(reopened if the file was replaced, e.g. by a rename, meanwhile).")
    sample_fps: Annotated[float, Field(gt=0, le=120)] = Field(
        default=5.0, description="How many frames per second to classify (the newest frame)."
    )
    realtime: bool = Field(
        default=True,
        description="Files only: pace reading to the file's fps, as a live camera would.",
    )
    stall_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=5.0,
        description="A read() (or open) blocking longer than this counts as a stall: the "
        "stuck capture is abandoned and a new one opened.",
    )
    open_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0,
        description="Opening a stream (connect, handshake, probing) may take this long; "
        "the watchdog abandons an open blocked for twice as long.",
    )
    motion_gate: bool = Field(
        default=False,
        description="Frame mode: skip inference while the scene is static (cheap "
        "grey-thumbnail difference); skipped frames are counted as skipped on purpose. "
        "Regions mode classifies only what moves anyway.",
    )
    motion_threshold: Annotated[float, Field(ge=0, le=255)] = Field(
        default=3.0,
        description="Mean absolute grey-level difference (0-255, on a 32x24 thumbnail) to the "
        "last classified frame below which a frame counts as static.",
    )
    motion_max_skip_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=10.0, description="Classify at least this often even when nothing moves."
    )
    mode: Literal["regions", "frame"] = Field(
        default="regions",
        description="regions: find moving regions, classify a square crop of each and follow "
        "animals as tracks (a wide park shot); frame: classify the whole frame resized to the "
        "model's input (a close-up camera), with per-frame detection events.",
    )
    region_analysis_width: Annotated[int, Field(ge=80, le=1280)] = Field(
        default=160,
        description="Regions: width in pixels of the small copy of the frame the background "
        "model sees (the height keeps the frame's aspect); the model's cost grows with its "
        "area (1.1 ms at 320, 0.26 ms at 160 on one core).",
    )
    rain_condition: bool = Field(
        default=True,
        description="Regions: tag a daylight frame 'rain' when its rain streak energy (thin, "
        "tall, bright lines on the small copy) reaches 1.5 grey levels: a condition with its "
        "own drift baseline, so weather raises no drift alert. false: rain stays 'day' (a "
        "scene whose own thin bright lines read as rain, or rain that should alarm as drift).",
    )
    region_subtractor: Literal["mog2", "knn"] = Field(
        default="mog2",
        description="Regions: OpenCV background subtractor (shadow detection on: a moving "
        "shadow is not a region).",
    )
    region_absorb_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=10.0,
        description="Regions: a thing that stops moving becomes part of the background after "
        "about this long (a resting animal keeps its track through a crop at its last box); "
        "a change of light is learnt as fast.",
    )
    region_sensitivity: Annotated[float, Field(ge=1, le=255)] = Field(
        default=16.0,
        description="Regions: how far from the background model a pixel must be to count as "
        "moving, as a squared distance in the model's standard deviations (MOG2's "
        "varThreshold; KNN gets 25 times this as dist2Threshold); lower finds more.",
    )
    region_min_size: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.03,
        description="Regions: smallest region kept, its longer side as a fraction of the "
        "frame's width.",
    )
    region_max_size: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.9,
        description="Regions: largest region kept, as a fraction of the frame's width and "
        "height; a larger one is a change of light, not an object.",
    )
    region_merge_distance: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.02,
        description="Regions: moving parts closer than this (fraction of the frame's width) "
        "are one region.",
    )
    # Off by default: with a trained model, splitting at 0.6 broke single animals into
    # parts on the end-to-end park clips (a cat counted three times) more often than it
    # parted animals walking side by side (docs/performance.md).
    region_split_neck: Annotated[float, Field(ge=0, lt=1)] = Field(
        default=0.0,
        description="Regions: a moving region is split into animals of their own where a "
        "part joins the rest through a waist narrower than this share of the part's "
        "half-width (two animals side by side are one moving blob; 0.6 parts them); "
        "higher splits more, 0 (the default) never splits. Parts that lie in one tracked "
        "animal's box stay that animal.",
    )
    region_max_per_frame: Annotated[int, Field(ge=1, le=32)] = Field(
        default=6,
        description="Regions: at most this many crops classified per frame (resting tracks "
        "first, then the largest moving regions).",
    )
    track_confirm_frames: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3,
        description="Regions: a track counts (in windows and events) once it was seen in "
        "this many classified frames.",
    )
    track_coast_seconds: Annotated[float, Field(ge=0, le=600)] = Field(
        default=2.0,
        description="Regions: a track not seen for longer than this has left (animal_left).",
    )
    track_reid_seconds: Annotated[float, Field(ge=0, le=600)] = Field(
        default=8.0,
        description="Regions: after the coast, an animal's track waits this much longer to "
        "be found again by a new track that starts near where it went (one animal, one "
        "count); animal_left goes out when it is not.",
    )

    @model_validator(mode="after")
    def _region_sizes(self) -> CameraConfig:
        if self.region_min_size >= self.region_max_size:
            raise ValueError("region_min_size must be below region_max_size")
        return self

    @property
    def kind(self) -> Literal["file", "url", "device"]:
        if self.source.isdigit():
            return "device"
        return "url" if "://" in self.source else "file"
