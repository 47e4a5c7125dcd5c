"""The hour check (``hours``) in an analysis: cameras' light history read from the hourly
rollups, and the verdicts it adds to a device's baseline verdicts.

Only a camera x condition with no baseline yet (``learning``) is checked: one with a
baseline is judged against it, and reading a history for every camera of a fleet each
analysis would cost more than the rest of it. The history is the ``hour_history_days``
whole days (UTC, the control plane's clock) before the analysis's day, so a new light is
no history of itself on the day it appears.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from ..config.drift import DriftSettings
from ..store.models import TelemetryRollup
from . import hours
from .collect import Collected

Camera = tuple[str, str]  # (device id, camera id)
Key = tuple[str, str]  # (camera id, condition)


def learning_cameras(found: Collected, have: dict[tuple[str, str], dict[Key, Any]]
                     ) -> set[Camera]:
    """(device, camera) of every camera x condition of the devices' latest windows that
    has no active baseline (``have``: by (release, device), as ``learning.active``)."""
    out: set[Camera] = set()
    for rel, per_device in found.devices.items():
        for device_id, dev in per_device.items():
            known = have.get((rel, device_id), {})
            for keys in dev.camera_keys():
                for key in keys:
                    if key not in known:
                        out.add((device_id, key[0]))
    return out


def day_start(t: datetime) -> datetime:
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def load(session: Session, cameras: set[Camera], end: datetime, settings: DriftSettings
         ) -> dict[Camera, hours.History]:
    """Each camera's history: its hourly rollup rows (every release) of the
    ``hour_history_days`` days before ``end``'s day."""
    until = day_start(end)
    since = until - timedelta(days=settings.hour_history_days)
    rows: dict[Camera, list[tuple[datetime, str, int]]] = defaultdict(list)
    devices = sorted({d for d, _ in cameras})
    r = TelemetryRollup
    for i in range(0, len(devices), 500):
        query = (
            sa.select(col(r.device_id), col(r.camera_id), col(r.bucket), col(r.condition),
                      col(r.windows))
            .where(col(r.device_id).in_(devices[i : i + 500]), col(r.camera_id) != "",
                   col(r.grain) == "hour", col(r.bucket) >= since, col(r.bucket) < until)
        )
        for device_id, camera_id, bucket, condition, windows in session.execute(query):
            if (device_id, camera_id) in cameras:
                rows[(device_id, camera_id)].append((bucket, condition, int(windows)))
    return {cam: hours.History.of(found) for cam, found in rows.items()}


def apply(device_id: str, base: dict[str, Any], histories: dict[Camera, hours.History],
          hour: int, settings: DriftSettings) -> None:
    """Add the hour check to a device's learning cameras (``base``: its ``baseline_holds``);
    a camera x condition whose latest windows show a light new at ``hour`` holds, named
    by the feature ``condition.hour`` with its statistic and level."""
    for cam in base.get("cameras", []):
        if cam.get("state") != "learning":
            continue
        history = histories.get((device_id, cam["camera_id"]))
        if history is None:
            continue
        v = hours.judge(history, hour, cam["condition"], int(cam["windows"]),
                        n=settings.alert_windows, k=settings.alert_drifted_windows,
                        min_days=settings.hour_min_days)
        if v is None:
            continue
        cam["hour"] = {"statistic": v.statistic, "level": v.level,
                       "history_days": v.history_days, "hour": hour}
        cam["driver"] = v.driver()
        cam["holds"] = v.drifted
        cam["drifted"] = int(v.statistic) if v.drifted else 0
    base["holds"] = any(c["holds"] for c in base.get("cameras", []))


__all__ = ["apply", "day_start", "learning_cameras", "load"]
