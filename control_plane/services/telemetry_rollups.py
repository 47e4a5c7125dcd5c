"""Rollups of telemetry windows: each stored window added into its receipt hour; past
days' hours folded into day rows later.

Ingest calls ``add`` in the transaction that stores the windows, with only the windows
it stored (a duplicate, an expired or an implausible window adds nothing), so a rollup
holds exactly the windows stored. Histograms and counts are additive: a batch is first
added up in Python per (bucket, device, release, camera, condition), then written with
one upsert that adds it into the stored hour row and marks it not ``folded``. On
PostgreSQL the addition happens in the upsert (ingest workers sharing the fleet may add
into one row at once; rows go in key order so that two batches lock them in the same
order); SQLite has one writer, so the stored rows are read and added to in Python first.

Ingest writes hour rows only: each row version of about 1 KB (plus its index entries and
WAL) was most of a window's cost in PostgreSQL, and the day rows were half of them. A
leased job (``telemetry_rollup_fold``) adds a past day's hours into its day rows and
marks them folded. Readers take a day from its day rows only when none of its hours is
unfolded (``day_spans``); otherwise (the job has not run yet, or a window was stored into
an hour after its day was folded) from its hours, which always hold every window.

A bucket ``b`` holds the windows received in (b, b + grain]: the control plane's clock,
as analysis and retention use, and a range (start, end] whose ends are on the hour is
then whole buckets. A late window adds into the hour it was received in.

The device's row (camera '' and condition '') is what ``drift.collect`` merges: the
``Summary`` of its windows on the release's profile bins (a window with other bins is
counted in ``mismatched`` and left out, as the raw path does). The camera rows add up
each camera × condition of those windows, for pages that show one camera's history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlmodel import Session, col

from protocols import ReferenceProfile

from ..drift import stored_rows
from ..drift.baseline import camera_key
from ..drift.summary import Summary
from ..store.models import ModelVersion, Release, TelemetryRollup
from .telemetry_rollup_write import Key, add_counts, upsert_postgres, upsert_sqlite

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
GRAINS = {"hour": HOUR, "day": DAY}
DEVICE = ""  # camera_id and condition of a device's whole-window row
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)


def floor(t: datetime, grain: timedelta) -> datetime:
    return _EPOCH + ((t - _EPOCH) // grain) * grain


def ceil(t: datetime, grain: timedelta) -> datetime:
    low = floor(t, grain)
    return low if low == t else low + grain


def bucket(received_at: datetime, grain: timedelta) -> datetime:
    """The bucket ``b`` whose (b, b + grain] holds ``received_at``."""
    return floor(received_at - _TICK, grain)


@dataclass
class _Row:
    """One rollup row of a batch. Its windows' flat rows are kept and added up once, column
    by column, when the row is written (``counts``): added pairwise as they came, every
    window cost a list of the profile's size per row it went into. Most rows of a batch
    hold one window, whose list is then the row's counts as it is, shared with the other
    row it went into (a single-camera window's device row and camera row). Counts are
    ints on the wire and stay ints here: shorter to write and to parse than floats."""

    zeros: list[float] | None  # None: a release with no profile (only windows are counted)
    first_start: datetime
    last_end: datetime
    windows: int = 0
    mismatched: int = 0
    parts: list[list[float]] = field(default_factory=list)  # never changed in place

    def span(self, start: datetime, end: datetime) -> None:
        self.first_start, self.last_end = min(self.first_start, start), max(self.last_end, end)

    def add(self, rows: Sequence[list[float]]) -> None:
        """One window given as its cameras' flat rows."""
        assert self.zeros is not None
        self.parts.extend(rows)
        self.windows += 1

    def counts(self, sums: dict[tuple[int, ...], list[float]]) -> list[float]:
        """The parts added up; ``sums``: the batch's sums by their parts' identities, so
        that rows with the same parts (a device's row and its one camera's) share a list."""
        if self.zeros is None:
            return []
        if not self.parts:
            return self.zeros
        if len(self.parts) == 1:
            return self.parts[0]
        ids = tuple(map(id, self.parts))
        found = sums.get(ids)
        if found is None:
            found = sums[ids] = [sum(column) for column in zip(*self.parts, strict=True)]
        return found

    def values(self, key: Key, counts: list[float]) -> dict[str, Any]:
        return {
            "grain": key[0], "bucket": key[1], "device_id": key[2], "release_id": key[3],
            "camera_id": key[4], "condition": key[5], "windows": self.windows,
            "mismatched": self.mismatched, "first_start": self.first_start,
            "last_end": self.last_end, "counts": counts, "folded": False,
        }


@dataclass
class _Batch:
    profiles: dict[str, ReferenceProfile | None]
    rows: dict[Key, _Row] = field(default_factory=dict)
    _bins: dict[str, Summary | None] = field(default_factory=dict)  # one per release

    def bins(self, release_id: str) -> Summary | None:
        """An empty summary on the release's bins, which judges a window's cameras (None:
        no profile)."""
        if release_id not in self._bins:
            profile = self.profiles.get(release_id)
            self._bins[release_id] = None if profile is None else Summary.empty(profile)
        return self._bins[release_id]

    def row(self, key: Key, start: datetime, end: datetime) -> _Row:
        row = self.rows.get(key)
        if row is None:
            bins = self.bins(key[3])
            row = self.rows[key] = _Row(None if bins is None else [0] * bins.flat.size,
                                        start, end)
        row.span(start, end)
        return row

    def add_window(self, w: dict[str, Any], flat: list[float] | None) -> None:
        """One stored window into its hour (``flat``: its cameras on its release's bins,
        ``stored_rows.flat_rows``; None: on other bins)."""
        b = bucket(w["received_at"], HOUR)
        start, end = w["window_start"], w["window_end"]
        device = self.row(("hour", b, w["device_id"], w["release_id"], DEVICE, DEVICE),
                          start, end)
        bins = self.bins(w["release_id"])
        if bins is None:
            device.windows += 1
            return
        if flat is None:
            device.mismatched += 1
            return
        size = bins.flat.size
        # An idle camera (no inferred frame) adds nothing, not even a camera row.
        rows = [(camera, flat[i * size : (i + 1) * size])
                for i, camera in enumerate(w["payload"].get("cameras") or [])
                if sum(camera.get("confidence_hist") or [])]
        # each camera's row is built once and added into the device's row and its own
        device.add([row for _, row in rows])
        for camera, row in rows:
            cam, condition = camera_key(camera)
            self.row(("hour", b, w["device_id"], w["release_id"], cam, condition),
                     start, end).add([row])


@lru_cache(maxsize=64)
def _profile(spec_text: str) -> ReferenceProfile | None:
    spec = json.loads(spec_text) or {}
    found = spec.get("reference_profile")
    return None if found is None else ReferenceProfile.model_validate(found)


# Profiles found, per engine (its database): a release's profile never changes (it is in
# the release's signed manifest), so ingest reads it once per process, not once a batch.
_FOUND: WeakKeyDictionary[sa.Engine, dict[str, ReferenceProfile]] = WeakKeyDictionary()
_FOUND_MAX = 256  # releases per database held at once (then the cache starts again)


def profiles(session: Session, release_ids: Iterable[str]) -> dict[str, ReferenceProfile | None]:
    """Each release's reference profile (None: unknown release, or no profile); parsed
    once per distinct model version spec, and read once per process for a release that
    has one (an unknown release is asked for again: it may be registered meanwhile)."""
    wanted = sorted(set(release_ids))
    found = _FOUND.setdefault(session.get_bind().engine, {})
    out: dict[str, ReferenceProfile | None] = {r: found.get(r) for r in wanted}
    missing = [r for r in wanted if out[r] is None]
    if not missing:
        return out
    rows = session.execute(
        sa.select(col(Release.release_id), sa.cast(col(ModelVersion.spec), sa.Text))
        .join(ModelVersion, col(Release.model_version_id) == col(ModelVersion.id))
        .where(col(Release.release_id).in_(missing))
    )
    if len(found) > _FOUND_MAX:
        found.clear()
    for release_id, text in rows:
        profile = out[release_id] = _profile(text)
        if profile is not None:
            found[release_id] = profile
    return out


def add(session: Session, windows: Sequence[dict[str, Any]],
        flats: Sequence[list[float] | None] | None = None) -> int:
    """Add stored windows (``telemetry_window`` rows as dicts, payload as a dict) into
    their hour rows (``flats``: beside each, its ``Binned.flat`` when the caller has it);
    returns how many rows were written. The caller commits."""
    pairs = [(w, f) for w, f in zip(windows, flats or [None] * len(windows), strict=True)
             if w["release_id"] is not None]
    if not pairs:
        return 0
    batch = _Batch(profiles(session, {w["release_id"] for w, _ in pairs}))
    for w, flat in pairs:
        bins = batch.bins(w["release_id"])
        if flats is None and bins is not None:
            flat = stored_rows.flat_rows(bins, w["payload"].get("cameras") or [])
        batch.add_window(w, flat)
    rows = batch.rows
    sums: dict[tuple[int, ...], list[float]] = {}
    ordered = [(k, rows[k], rows[k].counts(sums)) for k in sorted(rows)]
    if session.get_bind().dialect.name == "postgresql":
        upsert_postgres(session, ordered)
    else:
        upsert_sqlite(session, [row.values(k, counts) for k, row, counts in ordered])
    return len(ordered)


def unfolded_hours(since: datetime, until: datetime) -> sa.ColumnElement[bool]:
    """Hour rows not folded yet with buckets in [since, until), as a WHERE clause that
    the partial index ``ix_rollup_unfolded`` serves. ``grain`` is compared as an
    expression (``grain || ''``), not as the column: given ``grain = ?`` and a bucket
    range, SQLite's planner took the primary key (grain, bucket, ...) and read every hour
    row of the range (3.4 M in a week of 10,000 devices) to find the few unfolded."""
    r = TelemetryRollup
    return sa.and_(sa.not_(col(r.folded)), col(r.grain).op("||")("") == "hour",
                   col(r.bucket) >= since, col(r.bucket) < until)


def unfolded_days(session: Session, since: datetime, until: datetime) -> set[datetime]:
    """The days (their starts) in [since, until) with an hour row not folded into them:
    one probe of the partial index per such day, plus one."""
    r, out, at = TelemetryRollup, set(), since
    while at < until:
        found = session.execute(sa.select(sa.func.min(col(r.bucket))).where(
            unfolded_hours(at, until))).scalar()
        if found is None:
            break
        day = floor(found, DAY)
        out.add(day)
        at = day + DAY
    return out


Span = tuple[str, datetime, datetime]  # grain, and buckets [lo, hi) of it


def day_spans(session: Session, since: datetime, until: datetime) -> list[Span]:
    """The days whose buckets are in [since, until) (``since`` on a day) as the rows to
    read: each folded day's day rows, each other day's hour rows."""
    unfolded = unfolded_days(session, since, until)
    spans: list[Span] = []
    day = since
    while day < until:
        grain = "hour" if day in unfolded else "day"
        if spans and spans[-1][0] == grain and spans[-1][2] == day:
            spans[-1] = (grain, spans[-1][1], day + DAY)
        else:
            spans.append((grain, day, day + DAY))
        day += DAY
    return spans


def camera_history(
    session: Session, device_id: str, camera_id: str, since: datetime, until: datetime,
    grain: str,
) -> list[dict[str, Any]]:
    """One camera's points of ``grain`` in [since, until), oldest first: per bucket,
    condition and release, its windows, frames and class counts. Days not folded yet are
    added up from their hours."""
    r = TelemetryRollup
    spans = ([("hour", since, until)] if grain == "hour"
             else day_spans(session, floor(since, DAY), until))
    buckets: dict[tuple[datetime, str, str], tuple[int, list[float]]] = {}
    for g, lo, hi in spans:
        for b, condition, release_id, windows, counts in session.execute(
            sa.select(col(r.bucket), col(r.condition), col(r.release_id), col(r.windows),
                      col(r.counts))
            .where(col(r.device_id) == device_id, col(r.camera_id) == camera_id,
                   col(r.grain) == g, col(r.bucket) >= lo, col(r.bucket) < hi)
        ):
            key = (b if grain == "hour" else floor(b, DAY), condition, release_id)
            had = buckets.get(key)
            buckets[key] = ((windows, list(counts)) if had is None else
                            (had[0] + windows, add_counts(had[1], counts)))
    found = profiles(session, {k[2] for k in buckets})
    out = []
    for (b, condition, release_id), (windows, counts) in sorted(buckets.items()):
        profile = found.get(release_id)
        point: dict[str, Any] = {"bucket": b, "condition": condition,
                                 "release_id": release_id, "windows": windows,
                                 "frames": None, "class_counts": {}}
        if profile is not None and counts:
            s = Summary.empty(profile)
            s.add_counts(counts, windows, 0)
            point["frames"] = s.frames
            point["class_counts"] = dict(zip(s.labels, s.class_counts.tolist(), strict=True))
        out.append(point)
    return out

__all__ = ["DAY", "DEVICE", "GRAINS", "HOUR", "Span", "add", "add_counts", "bucket",
           "camera_history", "ceil", "day_spans", "floor", "profiles", "unfolded_days",
           "unfolded_hours"]
