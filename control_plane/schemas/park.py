"""The park manager's view of each camera: animals in view, visits per hour, where they went."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class AnimalInView(BaseModel):
    """A track the camera has announced and not yet ended."""

    track_id: int
    label: str | None
    confidence: float | None
    since: datetime
    box: tuple[float, float, float, float] | None = None


class HourCount(BaseModel):
    hour: datetime  # the start of the hour, by the control plane's clock
    animals: dict[str, int]  # animals that appeared in that hour, by their final label


class SnapshotInfo(BaseModel):
    """The latest snapshot an operator asked for: its JPEG is ``GET /artifacts/{image_sha256}``."""

    command_id: str
    captured_at: datetime
    received_at: datetime
    width: int
    height: int
    boxes: list[dict[str, object]]
    image_sha256: str


class ParkCamera(BaseModel):
    device_id: str
    camera_id: str
    online: bool
    state: str | None  # up, reconnecting, down ... as the agent last reported it
    detail: str | None  # why the camera is not up, in the agent's words
    mode: str | None  # regions or frame
    condition: str | None  # day, dusk, night, ir or rain in the newest window
    last_window_at: datetime | None
    in_view: list[AnimalInView]
    hourly: list[HourCount]
    totals: dict[str, int]  # animals that appeared in the range, by label
    mean_dwell_seconds: float | None
    heatmap: list[int]  # track centres per classified frame, row-major
    heatmap_cols: int
    heatmap_rows: int
    snapshot: SnapshotInfo | None = None


class ParkView(BaseModel):
    since: datetime
    until: datetime
    cameras: list[ParkCamera]
