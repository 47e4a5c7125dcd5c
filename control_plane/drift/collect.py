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
profile's bins as they are read (``DeviceWindows.recent_rows``), so the statistics never
bin them again.

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

import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic_core import from_json
from sqlmodel import Session, col, select

from protocols import ReferenceProfile

from ..services import telemetry_rollups as rollups
from ..store.models import ModelVersion, Release, TelemetryRollup, TelemetryWindowRecord
from . import stored_rows
from .baseline import camera_key
from .summary import Summary

STREAM_ROWS = 5000  # rows fetched per round trip (a server-side cursor on PostgreSQL)
Rows = list[float]  # a window's cameras on a profile's bins, one flat row after another
FlatRows = np.ndarray[Any, np.dtype[np.float32]]  # the same, as ingest stored them
Key = tuple[str, str]  # (camera id, condition): ``baseline.camera_key``
START_UNSET = datetime.min.replace(tzinfo=UTC)  # replaced by the device's span at the end


@dataclass
class DeviceWindows:
    """One device's windows of one release in the range: merged, plus its latest N.

    ``recent_rows``: each of ``recent``'s windows binned (one row per camera, in order;
    an idle camera is zeros), when ``collect`` read them (as ingest stored them, or
    binned as read); empty when the caller filled ``recent`` itself. ``recent_keys``:
    the same windows' cameras' (camera, condition) keys, filled with them."""

    summary: Summary
    recent: deque[dict[str, Any]]
    start: datetime
    end: datetime
    recent_rows: list[Rows | FlatRows] = field(default_factory=list)
    recent_keys: list[list[Key]] = field(default_factory=list)

    def binned(self) -> list[Rows | FlatRows | None]:
        """``recent_rows`` beside ``recent`` (None where a window is not binned yet)."""
        if len(self.recent_rows) == len(self.recent):
            return list(self.recent_rows)
        return [None] * len(self.recent)

    def camera_keys(self) -> list[list[Key]]:
        """Each of ``recent``'s windows' cameras' keys, in order: the learning of baselines,
        the hour check and the verdicts each group a chunk's cameras by them, and
        computing them once per read saves two of three passes over 150,000 cameras."""
        if len(self.recent_keys) != len(self.recent):
            self.recent_keys = [keys_of(p) for p in self.recent]
        return self.recent_keys


def keys_of(payload: dict[str, Any]) -> list[Key]:
    """The (camera, condition) keys of a window's cameras, in order."""
    return [camera_key(c) for c in payload.get("cameras") or []]


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


def rows_of(session: Session, query: sa.Executable) -> Iterable[Any]:
    """``query``'s rows of plain columns, run on the session's connection (its
    transaction): through the session itself each row also went through the ORM's
    loading, about a tenth of an analysis's reading. Nothing the analysis adds is pending
    when it reads these."""
    return session.connection().execute(query)


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


def binned(summary: Summary, payload: dict[str, Any]) -> Rows | None:
    """Each camera of a window on the summary's bins, one flat row after another (an idle
    camera: zeros); None if the window does not fit them (``Summary.fits``). A flat list,
    not an array: a chunk's windows become one matrix at once (``fleet.camera_rows``),
    where an array per window cost as much as binning it."""
    out: Rows = []
    for camera in payload.get("cameras") or []:
        if not summary.add_camera(out, camera):
            return None
    return out


# Devices per query of their latest windows: each query by receipt time reads the whole
# slice (``recent_slice``), so a chunk of devices is one query, not several.
RECENT_BATCH = 1000


def recent_slice(lo: datetime, hi: datetime, device_ids: list[str]) -> list[sa.ColumnElement[bool]]:
    """The WHERE clause of these devices' windows received in (lo, hi], served by the
    receipt-time index (``ix_telemetry_received``). The device is compared as an expression
    (``device_id || ''``), not as the column: given ``device_id IN (...)``, SQLite's
    planner took ``ix_telemetry_device_start`` and read every window each device has kept
    (1,440 a day each) to find the slice's ten, which was half of a 1,000-device report."""
    t = TelemetryWindowRecord
    return [col(t.received_at) > lo, col(t.received_at) <= hi,
            col(t.device_id).op("||")("").in_(device_ids)]


def first_slice(start: datetime, end: datetime, n: int) -> tuple[datetime, datetime]:
    """The receipt times (lo, hi] of ``read_recent``'s first slice: ``n`` one-minute windows
    twice over, so most devices need no other (10 minutes left the class mix's 15 to a
    second query)."""
    return max(start, end - timedelta(minutes=max(10, 2 * n))), end


def slice_ids(session: Session, start: datetime, end: datetime, release_id: str | None,
              n: int) -> dict[str, list[int]]:
    """Each device's window ids in ``first_slice`` (of ``release_id`` when given), read in
    one pass for a whole fleet: by receipt time, every chunk's query would read the whole
    fleet's slice again (ten times at 10,000 devices). The database gathers each device's
    ids into one array (JSON text on SQLite), so a row comes back per device, not per
    window: fetching and sorting 300,000 rows into lists was most of the pass."""
    t = TelemetryWindowRecord
    lo, hi = first_slice(start, end, n)
    pg = session.get_bind().dialect.name == "postgresql"
    # The expression, not the column: grouped by the column, SQLite's planner would take
    # the device index and read every window each device has kept (``recent_slice``).
    device = col(t.device_id).op("||")("")
    ids = sa.func.array_agg(col(t.id)) if pg else sa.func.json_group_array(col(t.id))
    query = sa.select(device, ids).where(col(t.received_at) > lo, col(t.received_at) <= hi)
    if release_id is not None:
        query = query.where(col(t.release_id) == release_id)
    query = query.group_by(device)
    return {device_id: list(got) if pg else from_json(got)
            for device_id, got in rows_of(session, query)}


def by_ids(session: Session, ids: list[int]) -> sa.ColumnElement[bool]:
    """The WHERE clause of the windows with these ids, the ids as ONE bound value (a JSON
    array on SQLite, an array on PostgreSQL): as ``IN (...)``, SQLAlchemy rendered a
    placeholder per id on every execution, 150,000 of them at 10,000 devices, which cost
    a third of reading the latest windows."""
    t = TelemetryWindowRecord
    if session.get_bind().dialect.name == "postgresql":
        return col(t.id) == sa.any_(sa.bindparam("ids", ids, type_=sa.ARRAY(sa.BigInteger)))
    listed: sa.Select[int] = sa.select(sa.column("value", sa.Integer)).select_from(
        sa.func.json_each(sa.bindparam("ids", json.dumps(ids), type_=sa.Text)))
    return col(t.id).in_(listed.scalar_subquery())


def read_recent(session: Session, devices: dict[tuple[str, str], DeviceWindows],
                start: datetime, end: datetime, release_id: str | None, n: int,
                first: dict[str, list[int]] | None = None, *, stored: bool = False) -> None:
    """Fill ``recent`` and ``recent_rows`` of these (release, device)s: each one's latest
    ``n`` windows in (start, end] that fit its release's bins, oldest first, read newest
    first in slices of receipt time, each four times the last, for the devices that still
    lack some (``first``: ``slice_ids`` of the first slice, when the caller has them; its
    windows are then read by id). What one device gets does not depend on which others are
    read with it, so an analysis reads them a chunk of devices at a time.

    ``stored``: a window binned at ingest is read from its drift columns
    (``stored_rows``), not its JSON: its ``recent`` entry then holds its cameras without
    the crop histograms, which its rows hold (what ``fleet`` and ``fleet_verdicts``
    read); otherwise every window's whole JSON."""
    # Per (release, device): the windows read, newest first, and its rows' width.
    got: dict[tuple[str, str], tuple[list[tuple[dict[str, Any], Rows | FlatRows]], int]] = {
        k: ([], dev.summary.flat.size) for k, dev in devices.items()}
    decode = stored_rows.decode
    t = TelemetryWindowRecord
    lo, hi = first_slice(start, end, n)
    step = hi - lo
    text = sa.cast(col(t.payload), sa.Text)
    columns = ((col(t.drift_rows), col(t.drift_cameras),
                sa.case((col(t.drift_rows).is_(None), text))) if stored
               else (sa.null(), sa.null(), text))
    while got and hi > start:
        lacking = sorted({d for (_, d), (ws, _) in got.items() if len(ws) < n})
        if first is not None and hi == end:
            wheres = [[by_ids(session, sorted(i for d in lacking for i in first.get(d, [])))]]
        else:
            wheres = [recent_slice(lo, hi, lacking[i : i + RECENT_BATCH])
                      for i in range(0, len(lacking), RECENT_BATCH)]
        for where in wheres:
            query = (
                sa.select(col(t.release_id), col(t.device_id), *columns)
                .where(*where)
                .order_by(col(t.device_id), col(t.received_at).desc(), col(t.seq).desc())
            )
            if release_id is not None:
                query = query.where(col(t.release_id) == release_id)
            for rel, device_id, data, cameras, payload_text in rows_of(session, query):
                slot = got.get((rel, device_id))
                if slot is None or len(slot[0]) >= n:
                    continue
                ws, size = slot
                if data is not None:
                    mine = from_json(cameras)
                    flat = decode(data)
                    # Binned on the release's profile, which never changes: always fits.
                    if flat.size == len(mine) * size:
                        ws.append(({"cameras": mine}, flat))
                    continue
                payload = from_json(payload_text)
                rows = binned(devices[(rel, device_id)].summary, payload)
                if rows is not None:
                    ws.append((payload, rows))
        step = step * 4
        hi, lo = lo, max(start, lo - step)
        if all(len(ws) >= n for ws, _ in got.values()):
            break
    for key, (ws, _) in got.items():
        ws.reverse()
        dev = devices[key]
        dev.recent.clear()
        dev.recent.extend(payload for payload, _ in ws)
        dev.recent_rows = [rows for _, rows in ws]
        dev.recent_keys = [[camera_key(c) for c in payload.get("cameras") or []]
                           for payload, _ in ws]


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
