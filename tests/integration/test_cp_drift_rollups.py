"""Rollups at ingest: the analysis's rollup path (``drift.collect``: whole hours and days
from ``telemetry_rollup``, the edges raw) gives exactly what merging every raw window
gives (``drift.oracle``), in a real store (SQLite file and PostgreSQL), with late,
duplicate, mismatched and unknown-release windows, several cameras and conditions,
receipts exactly on the hour, days folded from their hours by the job and days not
folded yet, a window stored into a day after its fold, and after a retention pass
(merged and deleted windows: the rollups keep the totals). Expected values come from the
oracle, never hard-coded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.config.retention import RetentionSettings
from control_plane.drift import collect, oracle, synthetic
from control_plane.drift.summary import Summary
from control_plane.services import telemetry_rollup_fold, telemetry_rollups
from control_plane.services.telemetry import ingest_windows
from control_plane.services.telemetry_retention import apply_retention
from control_plane.store import db
from control_plane.store.models import (
    Device,
    TelemetryRollup,
    TelemetryWindowRecord,
)
from control_plane.testing import register_profiled_release
from protocols import TelemetryWindow
from tests.conftest import wait_for_a_lock_wait
from tests.rollup_kit import (
    DAYS,
    ON_THE_HOUR,
    PROFILES,
    RANGES,
    T0,
    N,
    both,
    differences,
    ingest,
    profiled_store,
    traffic,
    window,
)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    with profiled_store(database_url,
                        [Device(device_id=f"cam-{d}", labels={}) for d in "abcde"]) as s:
        yield s


def test_rollup_path_equals_raw_path_with_late_and_duplicate_windows(session: Session) -> None:
    ingest(session)
    used = set()
    for start, end in RANGES:
        where = collect.plan(session, start, end)
        used |= {grain for grain, _, _ in where.buckets} | ({"raw"} if where.raw else set())
        for release_id in (None, "rel-b") if start < T0 + timedelta(hours=12) else (None,):
            fast, slow = both(session, start, end, release_id)
            assert slow.devices or release_id, (start, end)
            assert differences(fast, slow) == [], (start, end, release_id)
    assert used == {"hour", "day", "raw"}  # every path was taken
    later = collect.plan(session, *RANGES[0])
    assert later.raw[-1][1] == RANGES[0][1]  # windows came after its end: its tail is raw
    last = collect.plan(session, *RANGES[5])  # ... here none: the partial hour's row
    assert last.raw == [] and last.buckets[-1][1] == T0 + timedelta(days=DAYS)
    fast, slow = both(session, *RANGES[-1])
    assert slow.unknown == ["rel-x"]
    assert slow.devices["rel-a"]["cam-c"].summary.mismatched > 0


def test_a_skipped_rollup_is_caught(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(session, skip_batch=30, monkeypatch=monkeypatch, upto=40)
    assert differences(*both(session, *RANGES[1]))


def test_rollups_keep_the_totals_through_retention(session: Session) -> None:
    ingest(session)
    now = T0 + timedelta(days=DAYS)
    before = {r: oracle.collect(session, *r, None, N) for r in ON_THE_HOUR}
    rows = session.exec(select(func.count()).select_from(TelemetryRollup)).one()
    # merge windows older than a day into hourly ones, delete those older than two
    result = apply_retention(session, RetentionSettings(
        downsample_after_hours=24, bucket_minutes=60, delete_after_days=2), now)
    assert result.deleted > 0 and result.merged_windows > 0
    assert session.exec(select(func.count()).select_from(TelemetryRollup)).one() == rows
    for r in ON_THE_HOUR:
        fast = collect.collect(session, *r, None, N)
        raw_now = oracle.collect(session, *r, None, N)
        if r[0] < now - timedelta(days=1):
            assert differences(raw_now, before[r]) != []  # the raw windows changed ...
        diff = differences(fast, before[r])  # ... the rollups did not
        # a device's latest windows are raw: where they are old, retention merged them
        old = r[1] <= now - timedelta(days=1)
        diff = [d for d in diff if not (d.endswith("recent windows")
                                        and (old or d.startswith("rel-b/")))]
        assert diff == [], r
    # hourly rows go after rollup_hours_keep_days; whole days still come from daily rows
    result = apply_retention(session, RetentionSettings(
        downsample_after_hours=24, bucket_minutes=60, delete_after_days=2,
        rollup_hours_keep_days=1, rollup_days_keep_days=10), now)
    assert result.deleted_rollups > 0
    hours = session.exec(select(func.min(TelemetryRollup.bucket)).where(
        col(TelemetryRollup.grain) == "hour")).one()
    assert hours is not None and hours >= now - timedelta(days=1, hours=1)
    diff = differences(collect.collect(session, *RANGES[1], None, N), before[RANGES[1]])
    assert [d for d in diff if not d.endswith("recent windows")] == []


def test_camera_history_adds_up_its_windows(session: Session) -> None:
    """The daily rows of one camera hold what its stored windows hold, per condition."""
    ingest(session, upto=60)
    want: dict[str, list[float]] = {}
    windows: dict[str, int] = {}
    profile = PROFILES["rel-a"]
    for (payload,) in session.execute(select(TelemetryWindowRecord.payload).where(
            col(TelemetryWindowRecord.device_id) == "cam-c")):
        if payload["release_id"] != "rel-a" or not Summary.empty(profile).fits(payload):
            continue
        for camera in payload["cameras"]:
            if camera["camera_id"] == "door" and sum(camera["confidence_hist"]):
                counts = want.setdefault(camera["condition"], [0.0] * len(synthetic.LABELS))
                for i, label in enumerate(synthetic.LABELS):
                    counts[i] += camera["class_counts"].get(label, 0)
                windows[camera["condition"]] = windows.get(camera["condition"], 0) + 1
    points = telemetry_rollups.camera_history(session, "cam-c", "door", T0 - timedelta(days=1),
                                              T0 + timedelta(days=DAYS + 1), "day")
    got: dict[str, list[float]] = {}
    got_windows: dict[str, int] = {}
    for p in points:
        counts = got.setdefault(p["condition"], [0.0] * len(synthetic.LABELS))
        for i, label in enumerate(synthetic.LABELS):
            counts[i] += p["class_counts"][label]
        got_windows[p["condition"]] = got_windows.get(p["condition"], 0) + p["windows"]
    assert want and (got, got_windows) == (want, windows)


def test_history_route_serves_the_camera_rows(tmp_path: Path, database_url: str) -> None:
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", database_url=database_url)
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        h = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        engine = db.create_db_engine(settings.resolved_database_url)
        with Session(engine, expire_on_commit=False) as s:
            s.add(Device(device_id="cam-c", labels={}))
            register_profiled_release(s, "rel-a", PROFILES["rel-a"])
            s.commit()
            for received, batch in traffic()[:6]:
                ingest_windows(s, [TelemetryWindow.model_validate(w) for w in batch
                                   if w["device_id"] == "cam-c"], received_at=received)
            s.commit()
            want = telemetry_rollups.camera_history(s, "cam-c", "door", T0, T0 + timedelta(days=1),
                                                    "hour")
        engine.dispose()
        params = {"device_id": "cam-c", "camera_id": "door", "days": 1, "grain": "hour",
                  "until": (T0 + timedelta(days=1)).isoformat()}
        r = client.get("/api/v1/drift/history", params=params, headers=h)
        assert r.status_code == 200, r.text
        got = r.json()["points"]
        assert len(got) == len(want) > 0
        assert [p["windows"] for p in got] == [p["windows"] for p in want]
        r = client.get("/api/v1/drift/history", params={"device_id": "cam-c"}, headers=h)
        assert r.status_code == 422 and "camera_id" in r.text


def late_commit(s: Session, seq: int, received: datetime) -> None:
    """A batch whose transaction took the receipt time ``received`` but committed after
    the fold of its day (a worker stalled mid-batch): cam-a and cam-c, two cameras."""
    batch = [window("cam-a", seq, received), window("cam-c", seq, received)]
    outcome = ingest_windows(s, [TelemetryWindow.model_validate(w) for w in batch],
                             received_at=received)
    s.commit()
    assert outcome["stored"] == 2


def day_points(points: list[dict[str, Any]]) -> dict[tuple[datetime, str], tuple[int, Any]]:
    """Camera history points added up per day and condition."""
    out: dict[tuple[datetime, str], tuple[int, Any]] = {}
    for p in points:
        key = (telemetry_rollups.floor(p["bucket"], telemetry_rollups.DAY), p["condition"])
        windows, counts = out.get(key, (0, {}))
        out[key] = (windows + p["windows"], {k: counts.get(k, 0) + v
                                              for k, v in p["class_counts"].items()})
    return out


def test_a_window_stored_into_a_folded_day_is_counted(session: Session) -> None:
    """Days before yesterday are folded as ingest goes; a batch committed into day 0 after
    its fold makes readers take day 0 from its hours (the day rows miss it) until the job
    folds it again; every step gives the raw path's result, devices and cameras."""
    ingest(session)
    whole = (T0, T0 + timedelta(days=2))
    assert ("day", T0, T0 + timedelta(days=2)) in collect.plan(session, *whole).buckets
    late_commit(session, 50_000, T0 + timedelta(hours=10, seconds=30))
    assert telemetry_rollups.unfolded_days(session, T0, T0 + timedelta(days=2)) == {T0}
    where = collect.plan(session, *whole)
    assert where.buckets[:2] == [("hour", T0, T0 + timedelta(days=1)),
                                 ("day", T0 + timedelta(days=1), T0 + timedelta(days=2))]
    assert differences(*both(session, *whole)) == []
    assert differences(*both(session, *RANGES[0])) == []
    stale = session.exec(select(TelemetryRollup).where(
        TelemetryRollup.grain == "day", TelemetryRollup.bucket == T0,
        TelemetryRollup.device_id == "cam-a", TelemetryRollup.camera_id == "")).one()
    hours = sum(session.exec(select(TelemetryRollup.windows).where(
        TelemetryRollup.grain == "hour", TelemetryRollup.device_id == "cam-a",
        TelemetryRollup.camera_id == "", col(TelemetryRollup.bucket) >= T0,
        col(TelemetryRollup.bucket) < T0 + timedelta(days=1))).all())
    assert stale.windows == hours - 1  # the day row misses the late window ...
    history = telemetry_rollups.camera_history(session, "cam-c", "door", T0,
                                               T0 + timedelta(days=DAYS), "day")
    by_hours = day_points(telemetry_rollups.camera_history(
        session, "cam-c", "door", T0, T0 + timedelta(days=DAYS), "hour"))
    assert day_points(history) == by_hours  # ... which readers do not
    assert telemetry_rollup_fold.fold(session, T0 + timedelta(days=DAYS, hours=2)) > 0
    assert telemetry_rollups.unfolded_days(session, T0, T0 + timedelta(days=DAYS)) == set()
    assert collect.plan(session, *whole).buckets[0] == ("day", T0, T0 + timedelta(days=2))
    assert differences(*both(session, *whole)) == []
    assert differences(*both(session, *RANGES[4])) == []
    history = telemetry_rollups.camera_history(session, "cam-c", "door", T0,
                                               T0 + timedelta(days=DAYS), "day")
    assert day_points(history) == by_hours
    assert telemetry_rollup_fold.fold(session, T0 + timedelta(days=DAYS, hours=2)) == 0


@pytest.mark.postgres
def test_a_fold_waits_for_an_ingest_into_its_day(postgres_url: str) -> None:
    """The fold marks and reads an hour row in one statement, so an ingest transaction
    adding into it (still open) holds the fold until it commits; the day row then counts
    what that transaction added, and no hour is left both changed and marked folded."""
    db.upgrade(postgres_url)
    engine = db.create_db_engine(postgres_url)
    with Session(engine, expire_on_commit=False) as s:
        s.add_all(Device(device_id=f"cam-{d}", labels={}) for d in "ac")
        register_profiled_release(s, "rel-a", PROFILES["rel-a"])
        s.commit()
        for q in range(6):
            late_commit(s, q, T0 + timedelta(hours=10 + q % 2, minutes=q))
    writer = Session(engine)
    late = window("cam-a", 100, T0 + timedelta(hours=10, minutes=30))
    ingest_windows(writer, [TelemetryWindow.model_validate(late)],
                   received_at=T0 + timedelta(hours=10, minutes=30))
    folded: list[int] = []

    def fold() -> None:
        with Session(engine) as s:
            folded.append(telemetry_rollup_fold.fold(s, T0 + timedelta(days=1, hours=2)))

    folder = threading.Thread(target=fold)
    folder.start()
    try:
        wait_for_a_lock_wait(engine, "the fold never waited for the writer's row lock")
        writer.commit()
    finally:
        writer.close()
        folder.join(60)
    try:
        assert folded and folded[0] > 0
        with Session(engine) as s:
            assert telemetry_rollups.unfolded_days(s, T0, T0 + timedelta(days=1)) == set()
            whole = (T0, T0 + timedelta(days=1))
            assert collect.plan(s, *whole).buckets == [("day", *whole)]
            assert differences(*both(s, *whole)) == []
    finally:
        engine.dispose()


def test_rows_stored_before_the_fold_existed_start_folded(database_url: str) -> None:
    """Before migration 0016 ingest wrote each window into its hour and its day at once,
    so the stored hours are already in their days: none is read as unfolded."""
    db.upgrade(database_url, "0015")
    engine = db.create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            for grain in ("hour", "day"):
                conn.execute(sa.text(
                    "INSERT INTO telemetry_rollup (grain, bucket, device_id, release_id, "
                    "camera_id, condition, windows, mismatched, first_start, last_end, counts)"
                    " VALUES (:g, :b, 'cam-a', 'rel-a', '', '', 1, 0, :b, :b, :c)"),
                    {"g": grain, "b": T0, "c": [] if engine.dialect.name == "postgresql"
                     else "[]"})
        db.upgrade(database_url)
        with Session(engine) as s:
            assert telemetry_rollups.unfolded_days(s, T0, T0 + timedelta(days=1)) == set()
            assert telemetry_rollups.day_spans(s, T0, T0 + timedelta(days=1)) == [
                ("day", T0, T0 + timedelta(days=1))]
            s.add(TelemetryRollup(grain="hour", bucket=T0 + timedelta(hours=1),
                                  device_id="cam-a", release_id="rel-a", camera_id="",
                                  condition="", windows=1, mismatched=0, first_start=T0,
                                  last_end=T0, counts=[]))
            s.commit()  # a row written since starts unfolded
            assert telemetry_rollups.unfolded_days(s, T0, T0 + timedelta(days=1)) == {T0}
    finally:
        engine.dispose()
