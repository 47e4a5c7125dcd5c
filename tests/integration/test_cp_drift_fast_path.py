"""The analysis's fast path (``drift.collect``: payload as JSON text, raw window times,
bounded buffers) gives exactly what the straightforward computation (``drift.oracle``:
every window through the ORM's types) gives on the same windows, in a real store
(SQLite file and PostgreSQL). Expected values come from the oracle, never hard-coded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session, col, select

from control_plane.config.drift import DriftSettings
from control_plane.drift import collect, oracle, summary, synthetic
from control_plane.drift.analyser import run_analysis
from control_plane.services.telemetry import ingest_windows
from control_plane.store.models import Device, DriftReport
from protocols import TelemetryWindow
from tests.rollup_kit import PROFILES, assert_same_reports, profiled_store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RANGE = 60
START = NOW - timedelta(minutes=RANGE)
SETTINGS = DriftSettings(range_minutes=RANGE, analysis_interval_s=0, alert_windows=4,
                         alert_drifted_windows=2, min_samples=30)




def window(device: str, seq: int, end: datetime, release: str | None = "rel-a",
           shift: float = 0.0, profile: str = "rel-a") -> dict[str, Any]:
    rng = np.random.default_rng(seq * 31 + sum(map(ord, device)))
    return synthetic.window(PROFILES[profile], device, seq, rng=rng, release_id=release,
                            shift=shift, frames=50, start=end - timedelta(minutes=1))


def fleet() -> list[dict[str, Any]]:
    """Windows that exercise every rule of the merge: range edges, seq order against time
    order, release switches, unknown and missing releases, idle and mismatched cameras."""
    out = [window("cam-a", seq, START + timedelta(minutes=seq), shift=seq / 20)
           for seq in range(0, 45)]  # seq 0 ends at START: outside (start is exclusive)
    out.append(window("cam-a", 45, NOW))  # ends at NOW: inside
    out.append(window("cam-a", 46, NOW + timedelta(minutes=1)))  # after the range
    out.append(window("cam-a", 47, START - timedelta(minutes=3)))  # late: received at the end
    for seq in range(1, 13):  # rel-a, then rel-b (other bins), then rolled back to rel-a
        rel = "rel-b" if 5 <= seq < 9 else "rel-a"
        out.append(window("cam-b", seq, START + timedelta(minutes=4 * seq), rel, profile=rel))
    for seq in range(1, 8):
        w = window("cam-c", seq, START + timedelta(minutes=5 + seq), shift=1.5)
        idle = {**w["cameras"][0], "camera_id": "yard"}
        idle["confidence_hist"] = [0] * len(idle["confidence_hist"])
        busy = {**window("cam-c", 100 + seq, NOW)["cameras"][0], "camera_id": "door"}
        w["cameras"] += [idle, busy]
        if seq in (3, 7):  # bins that do not fit the profile: left out, counted
            w["cameras"][2]["embedding_hists"] = w["cameras"][2]["embedding_hists"][:1]
        out.append(w)
    out.append(window("cam-d", 1, START + timedelta(minutes=9), "rel-x"))  # no profile
    out.append(window("cam-d", 2, START + timedelta(minutes=10), None))
    out.append(window("cam-d", 3, START + timedelta(minutes=11), "rel-b", profile="rel-a"))
    return out


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    devices = [Device(device_id=d, labels={}) for d in ("cam-a", "cam-b", "cam-c", "cam-d")]
    with profiled_store(database_url, devices) as s:
        # Each received as it ends, but cam-a's seq 47: its agent time is before the range,
        # its receipt inside (the range is by receipt)
        for w in fleet():
            window = TelemetryWindow.model_validate(w)
            late = w["device_id"] == "cam-a" and w["seq"] == 47
            received = NOW - timedelta(seconds=30) if late else window.window_end
            assert ingest_windows(s, [window], received_at=received) == {"stored": 1}
        s.commit()
        yield s


@pytest.mark.parametrize("release_id", [None, "rel-b"])
def test_fast_collect_merges_exactly_what_the_oracle_merges(
    session: Session, release_id: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summary, "FLUSH_ROWS", 2)  # exercise the bounded buffer too
    fast = collect.collect(session, START, NOW, release_id, SETTINGS.alert_windows)
    slow = oracle.collect(session, START, NOW, release_id, SETTINGS.alert_windows)
    assert fast.unknown == slow.unknown
    assert fast.profiles == slow.profiles
    assert {r: sorted(d) for r, d in fast.devices.items()} == {
        r: sorted(d) for r, d in slow.devices.items()}
    for rel, per_device in slow.devices.items():
        for device_id, want in per_device.items():
            got = fast.devices[rel][device_id]
            np.testing.assert_array_equal(got.summary.flush(), want.summary.flush())
            assert (got.summary.windows, got.summary.mismatched) == (
                want.summary.windows, want.summary.mismatched)
            assert list(got.recent) == list(want.recent)
            assert (got.start, got.end) == (want.start, want.end)
            assert got.start.tzinfo is not None and got.end.utcoffset() == timedelta(0)


def test_written_reports_are_the_straightforward_ones(session: Session) -> None:
    expected = oracle.reports(session, SETTINGS, now=NOW)
    assert {r.release_id for r in expected} == {"rel-a", "rel-b"}
    assert any(r.statistics.get("mismatched_windows") for r in expected)
    assert any(r.statistics.get("recent", {}).get("drifted") for r in expected)
    result = run_analysis(session, SETTINGS, now=NOW)
    assert result.skipped_releases == ["rel-x"]
    rows = session.exec(select(DriftReport).order_by(col(DriftReport.id))).all()
    assert_same_reports(rows, expected)
