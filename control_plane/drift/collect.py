"""Loading a range's telemetry from the store, merged per release and device.

A fleet report over a week of a 10,000-device fleet covers 100 M windows, so whole
hours and days come from the rollups (``services.telemetry_rollups``): one row per device
and hour or day, a flat vector on the release's profile bins (a day not folded yet from
its hours). Only
the edges that are not whole buckets come from the raw windows: the part of the first
hour after ``start`` (none when ``start`` is on the hour, as ``report_start`` makes it)
and the current partial hour (its rollup row when no window arrived after ``end``, as is
the case when ``end`` is now). Each device's latest N windows (per-window verdicts) are
read raw, newest first, in slices that widen until N are found, and binned on the
profile's bins as they are read (``recent.read_recent`` into ``DeviceWindows.recent_rows``,
``device_windows``), so the statistics never bin them again.

Rows stream in device order and a device's rows are summed into its vector when the
next key begins, so memory holds one device's rows, not the fleet's; nothing goes
through the ORM's per-row type processing (payloads and counts come as text, parsed
here with pydantic-core's JSON parser, about twice as fast as ``json`` on a window and
four times on a rollup's array of counts; times come raw and only each device's first
start and last end are converted).
The result is the one of merging every window of the range (``oracle.collect``):
counts are integers, so summing them in another grouping is exact.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic_core import from_json
from sqlmodel import Session, col, select

from protocols import ReferenceProfile

from ..services import telemetry_rollups as rollups
from ..store.models import ModelVersion, Release, TelemetryRollup, TelemetryWindowRecord
from .device_windows import DeviceWindows, binned, keys_of, rows_of
from .recent import by_ids, first_slice, read_recent, recent_slice, slice_ids
from .summary import Summary

STREAM_ROWS = 5000  # rows fetched per round trip (a server-side cursor on PostgreSQL)
START_UNSET = datetime.min.replace(tzinfo=UTC)  # replaced by the device's span at the end


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


def _aware(raw: Any) -> datetime:
    """A raw window time as an aware UTC datetime, as ``models.UTCDateTime`` reads it."""
    value = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def report_start(end: datetime, minutes: int) -> datetime:
    """Where a report of ``minutes`` ending at ``end`` starts: on the hour at or before
    ``end - minutes``, so that everything but the current partial hour is rollups."""
    return rollups.floor(end - timedelta(minutes=minutes), rollups.HOUR)


@dataclass
class _Plan:
    """Where a range's windows are read: raw (lo, hi] ranges, and rollup buckets
    [lo, hi) of a grain."""

    raw: list[tuple[datetime, datetime]]
    buckets: list[tuple[str, datetime, datetime]]


def plan(session: Session, start: datetime, end: datetime) -> _Plan:
    """Whole hours and days of (start, end] from rollups, the edges raw."""
    h1, h2 = rollups.ceil(start, rollups.HOUR), rollups.floor(end, rollups.HOUR)
    if h1 >= h2:
        return _Plan([(start, end)], [])
    out = _Plan([(start, h1)] if start < h1 else [], [])
    d1, d2 = rollups.ceil(h1, rollups.DAY), rollups.floor(h2, rollups.DAY)
    spans = ([("hour", h1, d1), *rollups.day_spans(session, d1, d2), ("hour", d2, h2)]
             if d1 < d2 else [("hour", h1, h2)])
    out.buckets = [s for s in spans if s[1] < s[2]]
    if h2 < end:
        t = TelemetryWindowRecord
        later = session.execute(sa.select(col(t.id)).where(
            col(t.received_at) > end, col(t.received_at) <= h2 + rollups.HOUR).limit(1)).first()
        if later is None:  # the partial hour's row holds exactly (h2, end]
            out.buckets.append(("hour", h2, h2 + rollups.HOUR))
        else:
            out.raw.append((h2, end))
    return out


class _Merge:
    """Rows of (release, device) keys, in key order, summed per key."""

    def __init__(self, session: Session, recent_windows: int) -> None:
        self.session = session
        self.recent_windows = recent_windows
        self.profiles: dict[str, ReferenceProfile | None] = {}
        # An empty summary per release, copied for each device (``Summary.empty`` per
        # device read the profile's histograms again: about a tenth of merging a
        # 10,000-device week's rollups).
        self.empty: dict[str, Summary] = {}
        self.devices: dict[str, dict[str, DeviceWindows]] = {}
        self.spans: dict[tuple[str, str], list[Any]] = {}  # raw [first start, last end]
        self.key: tuple[str, str] | None = None
        self.dev: DeviceWindows | None = None
        self.span: list[Any] = []

    def switch(self, rel: str, device_id: str, first: Any, last: Any) -> DeviceWindows | None:
        """The key's entry (None: no profile), its span widened to (first, last)."""
        if self.key != (rel, device_id):
            self.done()
            self.key = (rel, device_id)
            if rel not in self.profiles:
                self.profiles[rel] = profile = reference_profile(self.session, rel)
                if profile is not None:
                    self.empty[rel] = Summary.empty(profile)
            if self.profiles[rel] is None:
                self.dev = None
                return None
            per_release = self.devices.setdefault(rel, {})
            self.dev = per_release.get(device_id)
            if self.dev is None:
                self.dev = per_release[device_id] = DeviceWindows(
                    self.empty[rel].empty_like(), deque(maxlen=self.recent_windows), START_UNSET,
                    START_UNSET)
                self.spans[self.key] = [first, last]
            self.span = self.spans[self.key]
        if self.dev is not None:
            self.span[0], self.span[1] = min(self.span[0], first), max(self.span[1], last)
        return self.dev

    def done(self) -> None:
        if self.dev is not None:
            self.dev.summary.flush()
        self.key, self.dev = None, None

    def result(self) -> Collected:
        self.done()
        for (rel, device_id), (first, last) in self.spans.items():
            dev = self.devices[rel][device_id]
            dev.start, dev.end = _aware(first), _aware(last)
        return Collected(
            profiles={k: v for k, v in self.profiles.items() if v is not None},
            devices=self.devices,
            unknown=sorted(k for k, v in self.profiles.items() if v is None),
        )


_RAW_TIME = sa.String()  # no result processing: SQLite text or the driver's datetime


def _raw_windows(merge: _Merge, ranges: list[tuple[datetime, datetime]],
                 release_id: str | None) -> None:
    t = TelemetryWindowRecord
    query = (
        sa.select(col(t.release_id), col(t.device_id),
                  sa.type_coerce(col(t.window_start), _RAW_TIME),
                  sa.type_coerce(col(t.window_end), _RAW_TIME), sa.cast(col(t.payload), sa.Text))
        .where(sa.or_(*(sa.and_(col(t.received_at) > lo, col(t.received_at) <= hi)
                        for lo, hi in ranges)), col(t.release_id).is_not(None))
        .order_by(col(t.release_id), col(t.device_id))
    )
    if release_id is not None:
        query = query.where(col(t.release_id) == release_id)
    for rel, device_id, w_start, w_end, text in rows_of(
        merge.session, query.execution_options(yield_per=STREAM_ROWS)
    ):
        dev = merge.switch(rel, device_id, w_start, w_end)
        if dev is not None:
            dev.summary.add_window(from_json(text))
    merge.done()


def _rolled_up(merge: _Merge, buckets: list[tuple[str, datetime, datetime]],
               release_id: str | None) -> None:
    r = TelemetryRollup
    query = (
        sa.select(col(r.release_id), col(r.device_id),
                  sa.type_coerce(col(r.first_start), _RAW_TIME),
                  sa.type_coerce(col(r.last_end), _RAW_TIME), col(r.windows),
                  col(r.mismatched), sa.cast(col(r.counts), sa.Text))
        .where(col(r.camera_id) == rollups.DEVICE,
               sa.or_(*(sa.and_(col(r.grain) == grain, col(r.bucket) >= lo, col(r.bucket) < hi)
                        for grain, lo, hi in buckets)))
        .order_by(col(r.release_id), col(r.device_id))
    )
    if release_id is not None:
        query = query.where(col(r.release_id) == release_id)
    # PostgreSQL's array text ({1,2}) as JSON; SQLite's JSON as it is.
    braces = (str.maketrans("{}", "[]")
              if merge.session.get_bind().dialect.name == "postgresql" else None)
    for rel, device_id, first, last, windows, mismatched, text in rows_of(
        merge.session, query.execution_options(yield_per=STREAM_ROWS)
    ):
        dev = merge.switch(rel, device_id, first, last)
        if dev is not None:
            dev.summary.add_counts(from_json(text if braces is None else text.translate(braces)),
                                   windows, mismatched)
    merge.done()


def collect(
    session: Session,
    start: datetime,
    end: datetime,
    release_id: str | None,
    recent_windows: int,
    *,
    recent: bool = True,
) -> Collected:
    """Every (release, device) with windows in (start, end], merged; releases with no
    reference profile are listed in ``unknown`` and their windows skipped. ``recent``
    False: each device's latest windows are left for the caller (``read_recent``)."""
    where = plan(session, start, end)
    merge = _Merge(session, recent_windows)
    if where.buckets:
        _rolled_up(merge, where.buckets, release_id)
    if where.raw:
        _raw_windows(merge, where.raw, release_id)
    found = merge.result()
    if recent:
        read_recent(session, {(rel, d): dev for rel, per_device in found.devices.items()
                              for d, dev in per_device.items()},
                    start, end, release_id, recent_windows)
    return found


__all__ = ["Collected", "DeviceWindows", "binned", "by_ids", "collect", "first_slice",
           "keys_of", "plan", "read_recent", "recent_slice", "reference_profile",
           "report_start", "rows_of", "slice_ids"]
