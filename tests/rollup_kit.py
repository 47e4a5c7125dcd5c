"""Rollup and drift-store test kit: a store with profiled releases (``profiled_store``),
three days of synthetic telemetry through ingest (late, duplicate, mismatched and
unknown-release windows, several cameras and conditions, receipts on the hour), the
ranges the tests read, and what differs between the rollup path (``drift.collect``) and
merging every raw window (``drift.oracle``), in collections and in written reports.

Imported by the drift tests of ``tests/integration`` (rollups, chunks, fast path, stored
rows, hours).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session

from control_plane.drift import collect, oracle, synthetic
from control_plane.drift.collect import Collected
from control_plane.services import telemetry_rollup_fold, telemetry_rollups
from control_plane.services.telemetry import ingest_windows
from control_plane.store import db
from control_plane.store.models import Device, DriftReport
from control_plane.testing import register_profiled_release
from protocols import ReferenceProfile, TelemetryWindow

T0 = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
DAYS = 3
PROFILES = {"rel-a": synthetic.profile(seed=0), "rel-b": synthetic.profile(seed=1, bins=12)}
N = 4  # recent windows per device
# (start, end] ranges: unaligned ends (raw edges), whole days, a tail with later windows
RANGES = [
    (T0 + timedelta(hours=5, minutes=17), T0 + timedelta(days=2, hours=20, minutes=40)),
    (T0, T0 + timedelta(days=2)),
    (T0 + timedelta(hours=23), T0 + timedelta(days=1, hours=1, minutes=1)),
    (T0 + timedelta(hours=2, minutes=10), T0 + timedelta(hours=2, minutes=50)),
    (T0 - timedelta(days=1), T0 + timedelta(days=DAYS + 1)),
    (T0 + timedelta(days=2, hours=12), T0 + timedelta(days=DAYS, minutes=10)),
]
# Ranges as reports make them (``collect.report_start``: on the hour)
ON_THE_HOUR = [(T0 + timedelta(hours=5), RANGES[0][1]), RANGES[1], RANGES[2], RANGES[5]]


@contextmanager
def profiled_store(database_url: str, devices: Iterable[Device],
                   profiles: Mapping[str, ReferenceProfile] = PROFILES) -> Iterator[Session]:
    """A session on a store migrated to the newest revision, holding ``devices`` and a
    release registered on each of ``profiles`` (committed); its engine is disposed after."""
    db.upgrade(database_url)
    engine = db.create_db_engine(database_url)
    with Session(engine, expire_on_commit=False) as s:
        s.add_all(devices)
        for release_id, profile in profiles.items():
            register_profiled_release(s, release_id, profile)
        s.commit()
        yield s
    engine.dispose()


def assert_same_reports(rows: Sequence[DriftReport], expected: Sequence[DriftReport]) -> None:
    """The analysis wrote the reports ``drift.oracle`` computes, field by field."""
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert (row.release_id, row.device_id, row.window_count, row.sample_count,
                row.drifted) == (want.release_id, want.device_id, want.window_count,
                                 want.sample_count, want.drifted)
        assert (row.window_start, row.window_end) == (want.window_start, want.window_end)
        assert json.dumps(row.statistics, sort_keys=True) == json.dumps(
            want.statistics, sort_keys=True)


def window(device: str, seq: int, end: datetime, release: str | None = "rel-a",
           profile: str = "rel-a") -> dict[str, Any]:
    rng = np.random.default_rng(seq * 31 + sum(map(ord, device)))
    night = not 6 <= end.hour < 20
    w = synthetic.window(PROFILES[profile], device, seq, rng=rng, release_id=release,
                         shift=1.0 if night else 0.0, frames=40,
                         start=end - timedelta(minutes=20),
                         condition="night" if night else "day")
    if device == "cam-c":  # a second camera, idle now and then; bins off now and then
        door = {**synthetic.window(PROFILES[profile], device, seq + 10_000, rng=rng,
                                   start=end, condition="ir")["cameras"][0],
                "camera_id": "door"}
        if seq % 5 == 0:
            door["confidence_hist"] = [0] * len(door["confidence_hist"])
        if seq % 7 == 3:
            door["embedding_hists"] = door["embedding_hists"][:1]
        w["cameras"].append(door)
    return w


def traffic() -> list[tuple[datetime, list[dict[str, Any]]]]:
    """Batches of windows with their receipt time: every 30 minutes (so receipts fall
    exactly on the hour), a release switch, an unknown release, late windows of an
    outbox drained hours later, and duplicates re-sent in a later batch and in the same
    one."""
    out: list[tuple[datetime, list[dict[str, Any]]]] = []
    for q in range(DAYS * 48):
        end = T0 + timedelta(minutes=30 * (q + 1))
        batch = [window("cam-a", q, end), window("cam-c", q, end)]
        rel = "rel-b" if 20 <= q < 40 else "rel-a"
        batch.append(window("cam-b", q, end, rel, profile=rel))
        if q % 9 == 0:
            batch.append(window("cam-d", q, end, "rel-x"))  # a release with no profile
        if q % 11 == 0 and q:
            batch.append(batch[0])  # sent twice in one batch
        if q % 13 == 0 and q:
            batch.append(out[-1][1][1])  # a re-send of the last batch's window
        if q % 24 != 12:  # cam-e's outbox holds these ...
            batch.append(window("cam-e", q, end))
        out.append((end, batch))
    for q in range(DAYS * 48):  # ... and drains them 5 hours later (late windows)
        if q % 24 == 12:
            received = T0 + timedelta(minutes=30 * (q + 1), hours=5, seconds=7)
            out.append((received, [window("cam-e", q, T0 + timedelta(minutes=30 * (q + 1)))]))
    last = T0 + timedelta(days=DAYS, minutes=7)  # the last, inside its hour
    out.append((last, [window("cam-a", 9_999, last)]))
    return sorted(out, key=lambda b: b[0])


def ingest(s: Session, skip_batch: int | None = None,
           monkeypatch: pytest.MonkeyPatch | None = None, upto: int | None = None) -> None:
    """The traffic through ingest, with the fold job run before each batch."""
    stored = duplicates = 0
    for i, (received, batch) in enumerate(traffic()[:upto]):
        telemetry_rollup_fold.fold(s, received)
        if i == skip_batch and monkeypatch is not None:
            with monkeypatch.context() as m:
                m.setattr(telemetry_rollups, "add", lambda *_: 0)
                outcome = ingest_windows(s, [TelemetryWindow.model_validate(w) for w in batch],
                                         received_at=received)
        else:
            outcome = ingest_windows(s, [TelemetryWindow.model_validate(w) for w in batch],
                                     received_at=received)
        stored += outcome["stored"]
        duplicates += outcome.get("duplicate", 0)
        s.commit()
    assert duplicates > 2 and stored > 100


def differences(fast: Collected, slow: Collected) -> list[str]:
    """What differs between two collections (empty: the same)."""
    out = []
    if (fast.unknown, fast.profiles) != (slow.unknown, slow.profiles):
        out.append(f"unknown {fast.unknown} != {slow.unknown}")
    keys = {(r, d) for r, per in slow.devices.items() for d in per}
    if keys != {(r, d) for r, per in fast.devices.items() for d in per}:
        return [*out, "devices differ"]
    for rel, device_id in sorted(keys):
        got, want = fast.devices[rel][device_id], slow.devices[rel][device_id]
        if not np.array_equal(got.summary.flush(), want.summary.flush()):
            out.append(f"{rel}/{device_id}: counts")
        if (got.summary.windows, got.summary.mismatched) != (
                want.summary.windows, want.summary.mismatched):
            out.append(f"{rel}/{device_id}: windows {got.summary.windows} != "
                       f"{want.summary.windows}")
        if list(got.recent) != list(want.recent):
            out.append(f"{rel}/{device_id}: recent windows")
        if (got.start, got.end) != (want.start, want.end):
            out.append(f"{rel}/{device_id}: span")
    return out


def both(s: Session, start: datetime, end: datetime,
         release_id: str | None = None) -> tuple[Collected, Collected]:
    return (collect.collect(s, start, end, release_id, N),
            oracle.collect(s, start, end, release_id, N))
