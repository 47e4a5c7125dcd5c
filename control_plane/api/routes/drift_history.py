"""``/api/v1/drift/history``: one camera's history from the rollups (daily or hourly rows
per condition and release: windows, frames, class counts), for a dashboard page that
shows a camera's last weeks without reading its raw windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ...services import telemetry_rollups
from ...store.models import utc_now
from ..deps import ReadDep, SessionDep

router = APIRouter(prefix="/drift/history", tags=["drift"])


class HistoryPoint(BaseModel):
    bucket: datetime = Field(description="Windows received in (bucket, bucket + grain].")
    condition: str
    release_id: str
    windows: int
    frames: int | None = Field(description="Inferred frames (None: release without profile).")
    class_counts: dict[str, float]


class CameraHistory(BaseModel):
    device_id: str
    camera_id: str
    grain: Literal["hour", "day"]
    points: list[HistoryPoint]


@router.get("", summary="One camera's history from the hourly or daily rollups")
def get_history(
    session: SessionDep,
    _p: ReadDep,
    device_id: Annotated[str, Query(max_length=63)],
    camera_id: Annotated[str, Query(min_length=1, max_length=64)],
    days: Annotated[int, Query(ge=1, le=400)] = 30,
    grain: Literal["hour", "day"] = "day",
    until: datetime | None = Query(None, description="End of the history (default: now)."),
) -> CameraHistory:
    end = until or utc_now()
    since = telemetry_rollups.floor(end - timedelta(days=days), telemetry_rollups.DAY)
    points = telemetry_rollups.camera_history(session, device_id, camera_id, since, end, grain)
    return CameraHistory(device_id=device_id, camera_id=camera_id, grain=grain,
                         points=[HistoryPoint(**p) for p in points])


__all__ = ["router"]
