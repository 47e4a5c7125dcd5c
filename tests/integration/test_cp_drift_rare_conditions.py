"""A condition rarer than 1 window in 8 gets its production baseline, learned over days,
through the real store (SQLite file and PostgreSQL): ``learning`` keeps a learning camera ×
condition's windows across analyses (``drift_baseline_pool``) until ``baseline_windows``
arrived. Before, a baseline was learned from the device's latest 8 × ``baseline_windows``
windows only, so a dusk of 1 window in 10 never got one, and its windows were judged by
the hour check only."""

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
from control_plane.store.models import (
    Device,
    DriftBaseline,
    DriftBaselineAttempt,
    DriftBaselinePool,
)
from protocols import TelemetryWindow
from tests.rollup_kit import profiled_store

T0 = datetime(2026, 6, 1, 6, tzinfo=UTC)
PROFILE = synthetic.profile(seed=0)
NEEDED = 30  # baseline_windows; the device's latest 240 windows are what was read
SETTINGS = DriftSettings(analysis_interval_s=0, range_minutes=60, alert_windows=5,
                         alert_drifted_windows=3, baseline_windows=NEEDED)
DAY_WINDOWS, DUSK_WINDOWS = 27, 3  # a day's windows of each light: dusk is 1 in 10


def healthy(device_id: str, release_id: str) -> Device:
    return Device(device_id=device_id, labels={}, active_release_id=release_id,
                  reported={"active": {"release_id": release_id, "stage": "healthy"}})


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    with profiled_store(database_url, [healthy("cam-a", "rel")],
                        {"rel": PROFILE, "rel-2": PROFILE}) as s:
        yield s


class Camera:
    """cam-a's windows, one a minute of each spell, received at the simulated time."""

    def __init__(self, session: Session) -> None:
        self.s, self.seq, self.rng = session, 0, np.random.default_rng(7)

    def spell(self, start: datetime, condition: str, windows: int) -> datetime:
        """``windows`` windows from ``start``, then an analysis; the last receipt time."""
        batch = []
        for i in range(windows):
            self.seq += 1
            batch.append(TelemetryWindow.model_validate(synthetic.window(
                PROFILE, "cam-a", self.seq, rng=self.rng, release_id="rel",
                start=start + timedelta(minutes=i), frames=150, condition=condition)))
        end = start + timedelta(minutes=windows)
        ingest_windows(self.s, batch, received_at=end)
        self.s.commit()
        run_analysis(self.s, SETTINGS, now=end + timedelta(seconds=30))
        return end

    def day(self, d: int) -> None:
        """Day ``d``: its daylight, then its dusk (each followed by an analysis)."""
        self.spell(T0 + timedelta(days=d), "day", DAY_WINDOWS)
        self.spell(T0 + timedelta(days=d, hours=12), "dusk", DUSK_WINDOWS)


def attempt(session: Session, condition: str) -> DriftBaselineAttempt | None:
    return session.exec(select(DriftBaselineAttempt)
                        .where(DriftBaselineAttempt.condition == condition)).first()


def pooled(session: Session, release_id: str = "rel") -> int:
    return len(session.exec(select(DriftBaselinePool)
                            .where(DriftBaselinePool.release_id == release_id)).all())


def test_a_dusk_of_one_window_in_ten_learns_its_baseline_over_days(session: Session) -> None:
    camera = Camera(session)
    for d in range(4):
        camera.day(d)
    dusk = attempt(session, "dusk")
    assert dusk is not None and (dusk.reason, dusk.windows) == ("too_few_windows", 12)
    assert dusk.message == (
        "needs 30 windows at dusk, has 12 over 4 days: it fits by itself in about 6 more days "
        "at this rate (the hour check judges it meanwhile)")
    assert pooled(session) == 12  # day's baseline was learned on day 2: its windows went
    for d in range(4, 10):
        camera.day(d)
    # 10 days hold 30 dusk windows; the device's latest 240 windows never more than 24.
    rows = session.exec(select(DriftBaseline).order_by(col(DriftBaseline.id))).all()
    assert [(b.condition, b.window_count) for b in rows] == [("day", NEEDED), ("dusk", NEEDED)]
    b = rows[1]
    assert b.learned_from == T0 + timedelta(hours=12, minutes=DUSK_WINDOWS)
    assert b.learned_to == T0 + timedelta(days=9, hours=12, minutes=DUSK_WINDOWS)
    assert b.levels and attempt(session, "dusk") is None and pooled(session) == 0


def test_a_learning_conditions_windows_go_when_the_device_leaves_the_release(
        session: Session) -> None:
    camera = Camera(session)
    camera.day(0)
    assert pooled(session) == DAY_WINDOWS + DUSK_WINDOWS  # both still learning
    device = session.get(Device, "cam-a")
    assert device is not None
    device.active_release_id = "rel-2"
    device.reported = {"active": {"release_id": "rel-2", "stage": "healthy"}}
    session.add(device)
    session.commit()
    run_analysis(session, SETTINGS, now=T0 + timedelta(hours=12, minutes=5))
    assert pooled(session) == 0
