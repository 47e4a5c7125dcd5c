"""The straightforward drift computation, for tests and the benchmark (production never
uses it): the analysis as it was before ``collect`` took the fast path.

Every window of the range comes through the ORM's types (payload dict, aware
datetimes) and is merged window by window. ``reports`` gives the reports that
``run_analysis`` writes (same order, same statistics) without touching the store, so
a test can hold the fast path to it and the benchmark can time both on the same data.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from ..store.models import TelemetryWindowRecord
from . import learning
from .analyser import Report, analysis_reports
from .collect import Collected, DeviceWindows, reference_profile, report_start
from .summary import Summary


def collect(
    session: Session,
    start: datetime,
    end: datetime,
    release_id: str | None,
    recent_windows: int,
) -> Collected:
    """``collect.collect``'s result, the straightforward way."""
    t = TelemetryWindowRecord
    query = (
        sa.select(
            col(t.release_id),
            col(t.device_id),
            col(t.window_start),
            col(t.window_end),
            col(t.payload),
        )
        .where(col(t.received_at) > start, col(t.received_at) <= end,
               col(t.release_id).is_not(None))
        .order_by(col(t.device_id), col(t.received_at), col(t.seq))
    )
    if release_id is not None:
        query = query.where(col(t.release_id) == release_id)
    profiles: dict[str, ReferenceProfile | None] = {}
    devices: dict[str, dict[str, DeviceWindows]] = {}
    for rel, device_id, w_start, w_end, payload in session.execute(
        query.execution_options(yield_per=2000)
    ):
        if rel not in profiles:
            profiles[rel] = reference_profile(session, rel)
        profile = profiles[rel]
        if profile is None:
            continue
        per_release = devices.setdefault(rel, {})
        dev = per_release.get(device_id)
        if dev is None:
            dev = per_release[device_id] = DeviceWindows(
                Summary.empty(profile), deque(maxlen=recent_windows), w_start, w_end
            )
        if dev.summary.add_window(payload):
            dev.recent.append(payload)
        dev.start, dev.end = min(dev.start, w_start), max(dev.end, w_end)
    return Collected(
        profiles={k: v for k, v in profiles.items() if v is not None},
        devices=devices,
        unknown=sorted(k for k, v in profiles.items() if v is None),
    )


def reports(
    session: Session,
    settings: DriftSettings,
    *,
    now: datetime,
    range_minutes: int | None = None,
    release_id: str | None = None,
) -> list[Report]:
    """The reports ``run_analysis`` would write for the range ending at ``now``, in order."""
    start = report_start(now, range_minutes or settings.range_minutes)
    found = collect(session, start, now, release_id, settings.latest_windows())
    out: list[Report] = []
    baselines = learning.active(session, sorted(found.devices))  # read only: learns nothing
    for _rel, device_reports, fleet in analysis_reports(found, settings, None, baselines):
        out += [*device_reports, fleet]
    return out


__all__ = ["collect", "reports"]
