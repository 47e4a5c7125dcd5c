"""The hour check through the real store (SQLite file and PostgreSQL): windows ingested
over days (hourly rollups at ingest), then an analysis. A camera whose IR filter sticks at
noon sends ``ir`` windows, a condition it has no baseline for (``learning``), at an hour
its history only ever showed daylight: the device is drifted, the alert opens, and the
verdict names ``condition.hour`` with its statistic and level. The same camera's nightly
``ir`` windows, at the hours IR always came, and rain at noon (weather, not light) raise
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session, col, select

from control_plane.config.drift import DriftSettings
from control_plane.drift import synthetic
from control_plane.drift.analyser import run_analysis
from control_plane.services.telemetry import ingest_windows
from control_plane.store.models import Device, DriftReport
from protocols import TelemetryWindow
from tests.rollup_kit import profiled_store

T0 = datetime(2026, 6, 1, tzinfo=UTC)
PROFILE = synthetic.profile(seed=0)
SETTINGS = DriftSettings(analysis_interval_s=0, range_minutes=60, alert_windows=5,
                         alert_drifted_windows=3)


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    devices = [Device(device_id=d, labels={}) for d in ("cam-a", "cam-b")]
    with profiled_store(database_url, devices, {"rel": PROFILE}) as s:
        yield s


def light(hour: int) -> str:
    """This park's light by the hour: IR at night (an illuminator), daylight by day."""
    return "day" if 7 <= hour < 19 else "ir"


class Clock:
    def __init__(self, session: Session) -> None:
        self.s, self.seq, self.rng = session, {"cam-a": 0, "cam-b": 0}, np.random.default_rng(5)

    def send(self, received: datetime, conditions: dict[str, str], copies: int = 1) -> None:
        """``copies`` windows per device, received together (one batch, one commit)."""
        batch = []
        for device, condition in conditions.items():
            for _ in range(copies):
                self.seq[device] += 1
                batch.append(TelemetryWindow.model_validate(synthetic.window(
                    PROFILE, device, self.seq[device], rng=self.rng, release_id="rel",
                    start=received - timedelta(minutes=1), frames=40, condition=condition)))
        ingest_windows(self.s, batch, received_at=received)
        self.s.commit()


def history(clock: Clock, days: int) -> None:
    """Every hour of ``days`` days: two windows per camera in that hour's light."""
    for d in range(days):
        for hour in range(24):
            t = T0 + timedelta(days=d, hours=hour, minutes=30)
            clock.send(t, dict.fromkeys(("cam-a", "cam-b"), light(hour)), copies=2)


def latest(clock: Clock, start: datetime, conditions: dict[str, str]) -> datetime:
    for i in range(5):
        clock.send(start + timedelta(minutes=i + 1), conditions)
    return start + timedelta(minutes=5, seconds=30)


def cameras(report: dict[str, object]) -> list[dict[str, object]]:
    return report["baseline"]["cameras"]  # type: ignore[index, no-any-return]


def device_statistics(session: Session, device: str) -> dict[str, object]:
    row = session.exec(select(DriftReport).where(DriftReport.device_id == device)
                       .order_by(col(DriftReport.id).desc())).first()
    assert row is not None
    return row.statistics


def test_ir_at_noon_is_a_new_light_ir_at_night_and_rain_are_not(session: Session) -> None:
    clock = Clock(session)
    history(clock, 3)
    today = T0 + timedelta(days=3)

    # Night, IR as every night; at noon cam-b's filter sticks, cam-a is in rain.
    end = latest(clock, today + timedelta(hours=2), {"cam-a": "ir", "cam-b": "ir"})
    result = run_analysis(session, SETTINGS, now=end)
    assert result.drifted_devices["rel"] == []
    [cam] = cameras(device_statistics(session, "cam-b"))
    assert cam["state"] == "learning" and not cam["holds"]
    assert cam["hour"]["statistic"] == 0  # type: ignore[index]

    end = latest(clock, today + timedelta(hours=12), {"cam-a": "rain", "cam-b": "ir"})
    result = run_analysis(session, SETTINGS, now=end)
    assert result.drifted_devices["rel"] == ["cam-b"]
    stats = device_statistics(session, "cam-b")
    verdict = stats["verdict"]
    assert verdict["feature"] == "condition.hour"  # type: ignore[index]
    assert verdict["statistic"] > verdict["level"]  # type: ignore[index, operator]
    assert verdict["condition"] == "ir" and verdict["drifted"]  # type: ignore[index]
    [rain] = cameras(device_statistics(session, "cam-a"))
    assert rain["condition"] == "rain" and not rain["holds"]
    assert [c.action for c in result.changes] == ["opened"]
    assert "condition.hour" in (result.changes[0].alert.message or "")
