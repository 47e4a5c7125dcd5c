"""Windows binned at ingest, in a real store (SQLite file and PostgreSQL): ingest stores
each window's cameras on its release's profile bins beside its JSON (``drift_rows``,
``drift_cameras``: ``drift.stored_rows``), and the analysis judges each device's latest
windows from them without parsing or binning their JSON, with the reports it writes from
the JSON. Expected values come from ``collect.binned`` of the stored JSON and from the
analysis on the JSON, never hard-coded."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from pydantic_core import from_json
from sqlmodel import Session, col, select

from control_plane.config.drift import DriftSettings
from control_plane.config.retention import RetentionSettings
from control_plane.drift import analyser, collect, recent, stored_rows, synthetic
from control_plane.drift.summary import Summary
from control_plane.services.telemetry import ingest_windows
from control_plane.services.telemetry_retention import apply_retention
from control_plane.store.models import Device, DriftReport, TelemetryWindowRecord
from protocols import TelemetryWindow
from tests.rollup_kit import PROFILES, profiled_store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RANGE = 60
DEVICES = [f"cam-{d}" for d in range(4)]
SETTINGS = DriftSettings(range_minutes=RANGE, analysis_interval_s=0, alert_windows=4,
                         alert_drifted_windows=2, min_samples=30, baseline_windows=20,
                         baseline_block=2)


def window(d: int, seq: int) -> dict[str, Any]:
    """cam-0: two cameras, the second idle every third minute; cam-1: region telemetry;
    cam-2: every fifth window on rel-b's bins though it says rel-a (other bins); cam-3:
    a window without cameras every seventh minute, and rel-x (no profile) at the end."""
    rng = np.random.default_rng(100 * d + seq)
    start = NOW - timedelta(minutes=RANGE - 2 - seq)
    rel = "rel-x" if d == 3 and seq >= RANGE - 8 else "rel-a"
    bins = PROFILES["rel-b" if d == 2 and seq % 5 == 0 else "rel-a"]
    out = synthetic.window(bins, DEVICES[d], seq, rng=rng, release_id=rel, frames=60,
                           start=start, shift=1.5 if seq >= RANGE - 6 else 0.0)
    camera = out["cameras"][0]
    if d == 0:
        other = synthetic.window(bins, DEVICES[d], seq, rng=rng, start=start, frames=60,
                                 camera_id="yard", condition="night")["cameras"][0]
        if seq % 3 == 0:
            other |= {"frames_inferred": 0, "confidence_hist": [0] * len(
                other["confidence_hist"])}
        out["cameras"].append(other)
    if d == 1:
        camera.update(synthetic.regions(rng, 60))
        camera["animals"] = {"cat": int(rng.integers(0, 5)), "dog": 3}
    if d == 3 and seq % 7 == 0:
        out["cameras"] = []
    return out


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    devices = [Device(device_id=device, labels={},
                      reported={"active": {"release_id": "rel-a", "stage": "healthy"}})
               for device in DEVICES]
    with profiled_store(database_url, devices) as s:
        for seq in range(RANGE - 3):
            batch = [TelemetryWindow.model_validate(window(d, seq)) for d in range(4)]
            ingest_windows(s, batch, received_at=batch[0].window_end)
        s.commit()
        yield s


def stored(session: Session) -> list[tuple[str | None, dict[str, Any], Any, Any]]:
    t = TelemetryWindowRecord
    rows = session.execute(sa.select(col(t.release_id), sa.cast(col(t.payload), sa.Text),
                                     col(t.drift_rows), col(t.drift_cameras))
                           .order_by(col(t.id))).all()
    return [(rel, from_json(text), data, cams) for rel, text, data, cams in rows]


def kinds_stored(session: Session) -> set[str]:
    """What each stored window's drift columns hold, each checked against its JSON
    ("json": none, where ingest could not bin it on its release's bins, or retention
    merged it)."""
    kinds = set()
    for rel, payload, data, cameras in stored(session):
        bins = Summary.empty(PROFILES[rel]) if rel in PROFILES else None
        want = None if bins is None else collect.binned(bins, payload)
        if data is None:  # the analysis reads the JSON
            assert cameras is None
            kinds.add("json" if want is None else "json, merged")
            continue
        got = stored_rows.decode(data)
        assert got.tolist() == want  # exact: counts as single precision
        kept = from_json(cameras)
        assert [c["camera_id"] for c in kept] == [c["camera_id"] for c in payload["cameras"]]
        for mine, full in zip(kept, payload["cameras"], strict=True):
            for field in stored_rows.KEPT:  # a field at its empty default is left out
                assert mine.get(field) == (full.get(field) or None)
            assert "confidence_hist" not in mine and "input_hists" not in mine
        kinds.add("no cameras" if not kept else "regions" if "animals" in kept[0]
                  else "two cameras" if len(kept) == 2 else "stored")
    return kinds


def test_ingest_stores_each_window_binned_on_its_release(session: Session) -> None:
    assert kinds_stored(session) == {"json", "no cameras", "regions", "two cameras", "stored"}


def test_a_window_merged_by_retention_is_read_from_its_json(session: Session) -> None:
    # Windows received over an hour before are merged in 10-minute buckets.
    result = apply_retention(session, RetentionSettings(
        downsample_after_hours=1, bucket_minutes=10, delete_after_days=1),
        NOW + timedelta(minutes=90))
    session.commit()
    assert result.merged_windows > 0
    assert {"json, merged", "stored"} <= kinds_stored(session)


def reports(session: Session) -> list[tuple[Any, ...]]:
    last = session.execute(sa.select(sa.func.max(col(DriftReport.id)))).scalar() or 0
    analyser.run_analysis(session, SETTINGS, now=NOW)
    rows = session.exec(select(DriftReport).where(col(DriftReport.id) > last)
                        .order_by(col(DriftReport.id))).all()
    assert rows
    return [(r.release_id, r.device_id, r.window_count, r.sample_count, r.drifted,
             json.dumps(r.statistics, sort_keys=True)) for r in rows]


def test_the_analysis_reads_the_stored_rows_and_reports_what_the_json_gives(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyser.run_analysis(session, SETTINGS, now=NOW)  # baselines learned: judged after
    binned = collect.binned
    calls: list[int] = []

    def spy(summary: Summary, payload: dict[str, Any]) -> Any:
        calls.append(1)
        return binned(summary, payload)

    monkeypatch.setattr(recent, "binned", spy)
    from_rows = reports(session)
    # Only the windows ingest could not bin on their release's profile are parsed.
    assert 0 < len(calls) < 10
    t = TelemetryWindowRecord.__table__  # type: ignore[attr-defined]
    session.execute(sa.update(t).values(drift_rows=None, drift_cameras=None))
    calls.clear()
    from_json_text = reports(session)
    assert len(calls) > 4 * len(DEVICES)
    assert from_rows == from_json_text
    assert any(r[4] for r in from_rows if r[1])  # the shift drifted a device


def test_the_first_slice_read_by_id_binds_the_ids_as_one_value(session: Session) -> None:
    """``read_recent`` given ``slice_ids`` reads those windows in one statement with the
    ids as one bound value (not a placeholder each, which SQLAlchemy renders on every
    execution), and gets the windows that reading by receipt time gets."""
    end = NOW - timedelta(minutes=3)
    start = end - timedelta(minutes=RANGE)

    def fresh() -> dict[tuple[str, str], collect.DeviceWindows]:
        return {("rel-a", d): collect.DeviceWindows(Summary.empty(PROFILES["rel-a"]),
                                                    deque(), end, end) for d in DEVICES}

    first = collect.slice_ids(session, start, end, "rel-a", 5)
    assert sum(len(ids) for ids in first.values()) > 20
    statements: list[Any] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "telemetry_window" in statement:
            statements.append(params)

    engine = session.get_bind()
    by_id = fresh()
    sa.event.listen(engine, "before_cursor_execute", seen)
    collect.read_recent(session, by_id, start, end, "rel-a", 5, first, stored=True)
    sa.event.remove(engine, "before_cursor_execute", seen)
    by_time = fresh()
    collect.read_recent(session, by_time, start, end, "rel-a", 5, stored=True)
    assert len(statements[0]) <= 3, statements[0]  # the ids, the release (and its limit)
    for key, dev in by_id.items():
        assert len(dev.recent) == 5
        assert list(dev.recent) == list(by_time[key].recent)
        assert [r.tolist() for r in dev.recent_rows] == [
            r.tolist() for r in by_time[key].recent_rows]


@pytest.mark.parametrize("release_id", ["rel-a", None])
def test_the_first_slice_comes_back_a_row_per_device(
        session: Session, monkeypatch: pytest.MonkeyPatch, release_id: str | None) -> None:
    """``slice_ids`` gets each device's window ids of the first slice (those a query per
    window finds), gathered by the database into one row per device: a row per window was
    300,000 rows to fetch and group at 10,000 devices."""
    end = NOW - timedelta(minutes=3)
    start = end - timedelta(minutes=RANGE)
    lo, hi = collect.first_slice(start, end, 5)
    t = TelemetryWindowRecord
    query = select(t.device_id, t.id).where(col(t.received_at) > lo, col(t.received_at) <= hi)
    if release_id is not None:
        query = query.where(t.release_id == release_id)
    want: dict[str, list[int]] = {}
    for device_id, id_ in session.exec(query):
        want.setdefault(device_id, []).append(id_ or 0)
    fetched: list[Any] = []
    rows_of = collect.rows_of

    def counted(s: Session, q: Any) -> Any:
        rows = list(rows_of(s, q))
        fetched.extend(rows)
        return rows

    monkeypatch.setattr(recent, "rows_of", counted)
    got = collect.slice_ids(session, start, end, release_id, 5)
    assert {d: sorted(ids) for d, ids in got.items()} == {d: sorted(ids)
                                                          for d, ids in want.items()}
    assert sum(len(ids) for ids in want.values()) > 2 * len(want)
    assert len(fetched) == len(want)
