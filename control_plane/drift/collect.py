"""Loading a range's telemetry windows from the store, merged per release and device.

This is the analysis's hot loop: a fleet report over a day of a 1,000-device fleet
reads 1.44 M windows. Only what the merge needs travels, and nothing goes through the
ORM's per-row type processing: the payload comes as JSON text (``CAST(... AS TEXT)``)
and is parsed once here; the window times come raw (SQLite's fixed-width text, or the
driver's datetimes on PostgreSQL), so a device's first start and last end are found
by comparing raw values and only those two are converted. A device's rows are summed
into its vector when the next key begins, so memory holds one device's rows, not the
fleet's. The result is the same as merging the ORM's payload dicts window by window
(``oracle.collect``): counts are integers, so summing them in another grouping is exact.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from protocols import ReferenceProfile

from ..store.models import ModelVersion, Release, TelemetryWindowRecord
from .summary import Summary

STREAM_ROWS = 5000  # rows fetched per round trip (a server-side cursor on PostgreSQL)
START_UNSET = datetime.min.replace(tzinfo=UTC)  # replaced by the device's span at the end


@dataclass
class DeviceWindows:
    """One device's windows of one release in the range: merged, plus its latest N."""

    summary: Summary
    recent: deque[dict[str, Any]]
    start: datetime
    end: datetime


@dataclass
class Collected:
    """Profiles of the releases seen, their devices' windows, and releases with no profile."""

    profiles: dict[str, ReferenceProfile] = field(default_factory=dict)
    devices: dict[str, dict[str, DeviceWindows]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def reference_profile(session: Session, release_id: str) -> ReferenceProfile | None:
    """The reference profile of a release's model version (None: unknown release)."""
    row = session.exec(
        select(ModelVersion.spec)
        .join(Release, col(Release.model_version_id) == col(ModelVersion.id))
        .where(Release.release_id == release_id)
    ).first()
    if row is None or "reference_profile" not in row:
        return None
    return ReferenceProfile.model_validate(row["reference_profile"])


def in_range(
    query: Any, start: datetime, end: datetime, release_id: str | None
) -> Any:
    """``query`` restricted to the windows received in (start, end], in each device's
    order of receipt (then seq). Receipt is the control plane's own clock: an agent whose
    clock is fast or slow is analysed with everyone else, never late or never."""
    t = TelemetryWindowRecord
    query = query.where(
        col(t.received_at) > start, col(t.received_at) <= end, col(t.release_id).is_not(None)
    ).order_by(col(t.device_id), col(t.received_at), col(t.seq))
    if release_id is not None:
        query = query.where(col(t.release_id) == release_id)
    return query


def _aware(raw: Any) -> datetime:
    """A raw window time as an aware UTC datetime, as ``models.UTCDateTime`` reads it."""
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def collect(
    session: Session,
    start: datetime,
    end: datetime,
    release_id: str | None,
    recent_windows: int,
) -> Collected:
    """Every (release, device) with windows in the range, merged; releases with no
    reference profile are listed in ``unknown`` and their windows skipped."""
    t = TelemetryWindowRecord
    raw_time = sa.String()  # no result processing: SQLite text or the driver's datetime
    query = in_range(
        sa.select(
            col(t.release_id),
            col(t.device_id),
            sa.type_coerce(col(t.window_start), raw_time),
            sa.type_coerce(col(t.window_end), raw_time),
            sa.cast(col(t.payload), sa.Text),
        ),
        start,
        end,
        release_id,
    )
    profiles: dict[str, ReferenceProfile | None] = {}
    devices: dict[str, dict[str, DeviceWindows]] = {}
    spans: dict[tuple[str, str], list[Any]] = {}  # raw [first start, last end]
    key: tuple[str, str] | None = None
    dev: DeviceWindows | None = None
    span: list[Any] = []
    loads = json.loads
    for rel, device_id, w_start, w_end, text in session.execute(
        query.execution_options(yield_per=STREAM_ROWS)
    ):
        if key != (rel, device_id):
            if dev is not None:
                dev.summary.flush()
            key = (rel, device_id)
            if rel not in profiles:
                profiles[rel] = reference_profile(session, rel)
            profile = profiles[rel]
            if profile is None:
                dev = None
                continue
            per_release = devices.setdefault(rel, {})
            dev = per_release.get(device_id)
            if dev is None:
                dev = per_release[device_id] = DeviceWindows(
                    Summary.empty(profile), deque(maxlen=recent_windows), START_UNSET, START_UNSET
                )
                spans[key] = [w_start, w_end]
            span = spans[key]
        elif dev is None:
            continue
        payload = loads(text)
        if dev.summary.add_window(payload):
            dev.recent.append(payload)
        if w_start < span[0]:
            span[0] = w_start
        if w_end > span[1]:
            span[1] = w_end
    if dev is not None:
        dev.summary.flush()
    for (rel, device_id), (first, last) in spans.items():
        devices[rel][device_id].start, devices[rel][device_id].end = _aware(first), _aware(last)
    return Collected(
        profiles={k: v for k, v in profiles.items() if v is not None},
        devices=devices,
        unknown=sorted(k for k, v in profiles.items() if v is None),
    )


__all__ = ["Collected", "DeviceWindows", "collect", "in_range", "reference_profile"]
