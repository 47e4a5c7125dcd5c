"""Batched, late and out-of-order ingest, and retention with downsampling, on a real store
(SQLite file and PostgreSQL): merged windows keep the drift histograms exact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from sqlmodel import Session, col, select

from control_plane.config.retention import RetentionSettings
from control_plane.drift import synthetic
from control_plane.drift.summary import Summary
from control_plane.services.fleet_summary import chart_figures
from control_plane.services.telemetry import ingest_window, ingest_windows
from control_plane.services.telemetry_retention import apply_retention, merge_windows
from control_plane.store import db
from control_plane.store.models import (
    Alert,
    Device,
    DriftReport,
    Model,
    ModelVersion,
    Release,
    TelemetryWindowRecord,
)
from protocols import TelemetryWindow

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    db.upgrade(database_url)
    engine = db.create_db_engine(database_url)
    with Session(engine, expire_on_commit=False) as s:
        for device in ("cam-a", "cam-b"):
            s.add(Device(device_id=device, labels={}))
        s.commit()
        yield s
    engine.dispose()


def windows(device: str, seqs: range, start: datetime, seed: int = 0) -> list[TelemetryWindow]:
    rng = np.random.default_rng(seed)
    ref = synthetic.profile()
    return [TelemetryWindow.model_validate(synthetic.window(
        ref, device, seq, rng=rng, release_id="rel-1", frames=60,
        start=start + timedelta(minutes=seq))) for seq in seqs]


def received_as_they_end(session: Session, ws: list[TelemetryWindow]) -> None:
    """Ingest each window as if received when it ended (time simulated by the test)."""
    for w in ws:
        assert ingest_window(session, w, received_at=w.window_end) == "stored"


def arrivals(kind: str) -> float:
    return REGISTRY.get_sample_value("parkwatch_cp_ingest_windows_total", {"arrival": kind}) or 0


def test_batched_ingest_is_idempotent_and_counts_each_outcome(session: Session) -> None:
    batch = windows("cam-a", range(1, 301), NOW - timedelta(hours=6))
    ghost = TelemetryWindow.model_validate({**batch[0].model_dump(mode="json", by_alias=True),
                                            "device_id": "cam-x"})
    assert ingest_windows(session, [*batch, batch[5], ghost]) == {
        "stored": 300, "duplicate": 1, "unknown_device": 1}
    session.commit()
    assert ingest_windows(session, batch[:10]) == {"duplicate": 10}
    session.commit()
    stored = session.exec(select(TelemetryWindowRecord.seq)).all()
    assert sorted(stored) == list(range(1, 301))
    seen = {d.device_id: d.last_seen for d in session.exec(select(Device)).all()}
    assert seen["cam-a"] is not None and seen["cam-b"] is None  # touched in bulk
    assert datetime.now(UTC) - seen["cam-a"] < timedelta(minutes=5)


def test_implausible_windows_are_refused_counted_and_named(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    backwards, ahead, fast, fine = windows("cam-a", range(1, 5), now - timedelta(minutes=5))
    backwards = backwards.model_copy(update={"window_end": backwards.window_start
                                             - timedelta(seconds=1)})
    ahead = ahead.model_copy(update={"window_start": now + timedelta(days=700),
                                     "window_end": now + timedelta(days=700, minutes=1)})
    fast = fast.model_copy(update={"window_start": now + timedelta(minutes=9),
                                   "window_end": now + timedelta(minutes=10)})  # clock 10 min fast
    with caplog.at_level("WARNING", logger="control_plane.services.telemetry"):
        outcomes = ingest_windows(session, [backwards, ahead, fast, fine])
    session.commit()
    assert outcomes == {"implausible": 2, "stored": 2}
    assert sorted(session.exec(select(TelemetryWindowRecord.seq)).all()) == [3, 4]
    reasons = [r.getMessage() for r in caplog.records]
    assert any("ends before it starts" in m for m in reasons)
    assert any("after its receipt" in m for m in reasons)


def test_late_and_out_of_order_windows_are_stored_and_counted(session: Session) -> None:
    now = datetime.now(UTC)
    ws = windows("cam-b", range(1, 6), now - timedelta(minutes=8))
    before = {k: arrivals(k) for k in ("in_order", "out_of_order", "late")}
    for w in (ws[4], ws[3]):  # seq 5 arrives first (fresh), then seq 4: out of order
        assert ingest_window(session, w) == "stored"
    late = windows("cam-a", range(1, 2), now - timedelta(hours=2))[0]
    assert ingest_window(session, late) == "stored"
    session.commit()
    assert arrivals("out_of_order") - before["out_of_order"] == 1
    assert arrivals("late") - before["late"] >= 1


def test_downsampling_merges_old_windows_exactly_and_deletes_expired(session: Session) -> None:
    rs = RetentionSettings(downsample_after_hours=48, bucket_minutes=60, delete_after_days=7)
    old = windows("cam-a", range(0, 120), NOW - timedelta(days=3), seed=1)  # 2 hours
    recent = windows("cam-a", range(120, 130), NOW - timedelta(hours=1), seed=2)
    ancient = windows("cam-b", range(0, 5), NOW - timedelta(days=9), seed=3)
    received_as_they_end(session, [*old, *recent, *ancient])
    session.commit()
    ref = synthetic.profile()
    expected = Summary.empty(ref)
    for w in old:
        expected.add_window(w.model_dump(mode="json", by_alias=True))

    result = apply_retention(session, rs, NOW)
    # buckets by receipt (12:01-12:59, 13:00-13:59, 14:00): the last window is alone
    assert result.deleted == 5 and result.merged_windows == 119
    rows = session.exec(select(TelemetryWindowRecord).where(
        col(TelemetryWindowRecord.window_end) < NOW - timedelta(days=1))
        .order_by(col(TelemetryWindowRecord.seq))).all()
    assert len(rows) in (2, 3)  # 120 minutes over 2-3 hour buckets
    merged = Summary.empty(ref)
    for row in rows:
        assert merged.add_window(row.payload)
        # the fleet page charts what the merged window says, not its first member
        figures = chart_figures(row.payload)
        assert (row.inference_fps, row.latency_p95_ms) == (
            figures["inference_fps"], figures["latency_p95_ms"])
    assert merged.frames == expected.frames == 120 * 60
    np.testing.assert_array_equal(merged.confidence, expected.confidence)
    np.testing.assert_array_equal(merged.inputs["brightness"], expected.inputs["brightness"])
    np.testing.assert_array_equal(merged.class_counts, expected.class_counts)
    assert rows[0].seq == 0 and rows[0].payload["cameras"][0]["inference_ms"] is None
    recent_rows = session.exec(select(TelemetryWindowRecord).where(
        col(TelemetryWindowRecord.seq) >= 120)).all()
    assert len(recent_rows) == 10  # not old enough to merge
    again = apply_retention(session, rs, NOW)  # idempotent: nothing left to merge
    assert again.merged_groups == 0 and again.deleted == 0


def test_resent_windows_of_a_merged_period_are_refused_never_counted_twice(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    rs = RetentionSettings(downsample_after_hours=48, bucket_minutes=60, delete_after_days=7)
    old = windows("cam-a", range(0, 60), NOW - timedelta(days=3), seed=1)
    received_as_they_end(session, old)
    session.commit()
    assert apply_retention(session, rs, NOW).merged_windows >= 59

    def frames() -> int:
        rows = session.exec(select(TelemetryWindowRecord.payload)).all()
        return sum(c["frames_inferred"] for p in rows for c in p["cameras"])

    before = frames()
    with caplog.at_level("WARNING", logger="control_plane.services.telemetry"):
        outcomes = ingest_windows(session, [old[10], old[59]], received_at=NOW)
    assert outcomes == {"expired": 2}  # seq 10 merged away: a re-send, not a new window
    assert "already merged" in caplog.text
    newer = windows("cam-a", range(60, 61), NOW - timedelta(minutes=1))
    reimaged = windows("cam-a", range(0, 1), NOW - timedelta(minutes=1))[0].model_copy(
        update={"instance": "new-sd-card"})
    assert ingest_windows(session, [*newer, reimaged], received_at=NOW) == {"stored": 2}
    session.commit()
    assert frames() == before + 2 * 60


def test_skewed_agent_clocks_are_analysed_and_aged_by_receipt(session: Session) -> None:
    """An agent 10 minutes fast and one 70 minutes slow: drift selection takes both windows
    received in the range, whatever their own times say; retention ages them by receipt."""
    from control_plane.drift.collect import collect

    ref = synthetic.profile()
    session.add(Model(name="m"))
    session.flush()
    version = ModelVersion(model_id=1, number=1, version="1", primary_sha256="0" * 64,
                           created_by="t", spec={"reference_profile": ref.model_dump(mode="json")})
    session.add(version)
    session.flush()
    session.add(Release(release_id="rel-1", model_version_id=version.id or 0, model_name="m",
                        model_version="1", key_id="0" * 16, primary_sha256="0" * 64,
                        manifest={}, created_by="t"))
    received = NOW - timedelta(minutes=5)
    fast = windows("cam-a", range(1, 2), received + timedelta(minutes=9))
    slow = windows("cam-b", range(1, 2), received - timedelta(minutes=71))
    assert ingest_windows(session, [*fast, *slow], received_at=received) == {"stored": 2}
    session.commit()
    found = collect(session, NOW - timedelta(minutes=10), NOW, None, 4)
    assert sorted(found.devices["rel-1"]) == ["cam-a", "cam-b"]
    assert collect(session, NOW - timedelta(minutes=4), NOW, None, 4).devices == {}
    rs = RetentionSettings(downsample_after_hours=1, bucket_minutes=60, delete_after_days=1)
    assert apply_retention(session, rs, NOW).deleted == 0  # slow clock: not aged by its times
    assert apply_retention(session, rs, received + timedelta(days=1, seconds=1)).deleted == 2


def test_windows_on_other_bins_are_not_merged() -> None:
    a, b = (w.model_dump(mode="json", by_alias=True)
            for w in windows("cam-a", range(1, 3), NOW))
    b["cameras"][0]["confidence_hist"] = [1, 2]
    with pytest.raises(ValueError, match="different bins"):
        merge_windows([a, b])
    merged: dict[str, Any] = merge_windows([a, a | {"seq": 9}])
    assert merged["seq"] == 1


def test_old_drift_reports_go_unless_an_alert_points_at_them(session: Session) -> None:
    def report(age_days: float) -> DriftReport:
        at = NOW - timedelta(days=age_days)
        row = DriftReport(window_start=at, window_end=at, created_at=at, statistics={})
        session.add(row)
        session.flush()
        return row

    old, kept_by_alert, recent = report(10), report(10), report(1)
    session.add(Alert(kind="drift", severity="warning", state="resolved", message="m",
                      drift_report_id=kept_by_alert.id, detail={}))
    session.commit()
    result = apply_retention(session, RetentionSettings(reports_keep_days=7), NOW)
    assert result.deleted_reports == 1
    left = set(session.exec(select(DriftReport.id)).all())
    assert left == {kept_by_alert.id, recent.id} and old.id not in left


def test_downsampling_a_device_at_a_time_gives_the_same_windows(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big fleets are downsampled a few devices per pass (bounded memory): one device per
    pass must leave exactly what one pass over all devices leaves."""
    from control_plane.services import telemetry_retention

    rs = RetentionSettings(downsample_after_hours=48, bucket_minutes=60, delete_after_days=7)
    for i, device in enumerate(("cam-a", "cam-b")):
        received_as_they_end(session, windows(device, range(0, 90), NOW - timedelta(days=3),
                                              seed=i))
    session.commit()
    monkeypatch.setattr(telemetry_retention, "DEVICES_PER_PASS", 1)
    result = apply_retention(session, rs, NOW)
    assert result.merged_windows == 180
    rows = session.exec(select(TelemetryWindowRecord).order_by(
        col(TelemetryWindowRecord.device_id), col(TelemetryWindowRecord.seq))).all()
    by_device = {d: [r for r in rows if r.device_id == d] for d in ("cam-a", "cam-b")}
    assert all(len(v) in (2, 3) for v in by_device.values())  # 90 minutes in hour buckets
    for i, device in enumerate(("cam-a", "cam-b")):
        ref = synthetic.profile()
        expected, merged = Summary.empty(ref), Summary.empty(ref)
        for w in windows(device, range(0, 90), NOW - timedelta(days=3), seed=i):
            expected.add_window(w.model_dump(mode="json", by_alias=True))
        for row in by_device[device]:
            assert merged.add_window(row.payload)
        np.testing.assert_array_equal(merged.inputs["brightness"], expected.inputs["brightness"])
        np.testing.assert_array_equal(merged.class_counts, expected.class_counts)
