"""Window ingest on a real PostgreSQL: what ingest workers sharing a fleet need of it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.drift import synthetic
from control_plane.drift.summary import Summary
from control_plane.services.telemetry import ingest_windows
from control_plane.store import db
from control_plane.store.models import Device, TelemetryRollup, TelemetryWindowRecord
from control_plane.testing import register_profiled_release, telemetry_window
from protocols import TelemetryWindow

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    db.upgrade(postgres_url)
    engine = db.create_db_engine(postgres_url)
    with Session(engine) as s:
        s.add_all([Device(device_id=d, labels={}) for d in ("cam-a", "cam-b")])
        s.commit()
    yield engine
    engine.dispose()


def test_a_batch_does_not_wait_for_a_device_row_another_worker_holds(engine: Engine) -> None:
    """Two workers' batches name the same devices; the second must not queue behind the
    first's row lock on ``device`` until it commits (that ran them one at a time)."""
    with Session(engine) as holder, Session(engine) as worker:
        # The other worker's transaction: it has touched cam-a and not committed yet.
        holder.execute(sa.text("UPDATE device SET last_seen = now() WHERE device_id = 'cam-a'"))
        worker.execute(sa.text("SET LOCAL lock_timeout = '3s'"))  # waiting fails the test
        now = datetime.now(UTC)
        batch = [telemetry_window(d, seq) for d in ("cam-a", "cam-b") for seq in range(3)]
        assert ingest_windows(worker, batch, received_at=now) == {"stored": 6}
        worker.commit()
        holder.rollback()
    with Session(engine) as s:
        assert len(s.exec(select(TelemetryWindowRecord)).all()) == 6
        seen = {d.device_id: d.last_seen for d in s.exec(select(Device)).all()}
    assert seen["cam-a"] is None  # held elsewhere: left to its holder and the next batch
    assert seen["cam-b"] is not None and abs(seen["cam-b"] - now) < timedelta(seconds=1)


def test_a_batch_does_not_wait_for_another_workers_batch_of_the_same_device(
        engine: Engine) -> None:
    """The other worker's batch has stored windows of cam-a and not committed yet: this
    worker's windows of cam-a must not queue behind it. Its ``last_seen`` lock must leave
    the device row's key to the windows' foreign-key check, which reads the row ``FOR KEY
    SHARE`` (a ``FOR UPDATE`` lock made the second batch wait for the first's commit)."""
    now = datetime.now(UTC)
    with Session(engine) as holder, Session(engine) as worker:
        assert ingest_windows(holder, [telemetry_window("cam-a", 0)],
                              received_at=now) == {"stored": 1}
        worker.execute(sa.text("SET LOCAL lock_timeout = '3s'"))  # waiting fails the test
        assert ingest_windows(worker, [telemetry_window("cam-a", 1)],
                              received_at=now) == {"stored": 1}
        worker.commit()
        holder.commit()
    with Session(engine) as s:
        assert len(s.exec(select(TelemetryWindowRecord)).all()) == 2
        cam_a = s.get(Device, "cam-a")
    assert cam_a is not None and cam_a.last_seen is not None


def test_two_workers_adding_into_the_same_rollup_rows_lose_nothing(postgres_url: str) -> None:
    """Two workers' batches of the same devices add into the same hour rows at once: each
    row then holds exactly the sum of the windows stored (no addition lost to the other's,
    no deadlock between their upserts)."""
    db.upgrade(postgres_url)
    engine = db.create_db_engine(postgres_url)
    profile = synthetic.profile(seed=0)
    devices = [f"cam-{i}" for i in range(6)]
    with Session(engine) as s:
        s.add_all([Device(device_id=d, labels={}) for d in devices])
        register_profiled_release(s, "rel-a", profile)
        s.commit()
    now = datetime(2026, 6, 1, 10, 30, tzinfo=UTC)
    rng = np.random.default_rng(0)
    windows = [TelemetryWindow.model_validate(synthetic.window(
        profile, d, seq, rng=rng, frames=30, release_id="rel-a",
        start=now - timedelta(minutes=30 - seq))) for seq in range(24) for d in devices]
    start = threading.Barrier(2)

    def worker(part: int) -> None:
        mine = [w for w in windows if w.seq % 2 == part]
        start.wait()
        for i in range(0, len(mine), 6):
            with Session(engine) as s:
                ingest_windows(s, mine[i:i + 6], received_at=now)
                s.commit()

    threads = [threading.Thread(target=worker, args=(part,)) for part in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        with Session(engine) as s:
            rows = s.exec(select(TelemetryRollup).where(TelemetryRollup.camera_id == "")).all()
        assert sorted((r.grain, r.device_id) for r in rows) == [("hour", d) for d in devices]
        for r in rows:
            expected = Summary.empty(profile)
            for w in windows:
                if w.device_id == r.device_id:
                    expected.add_window(w.model_dump(mode="json"))
            assert r.windows == expected.windows == 24
            assert r.counts == expected.flush().tolist()
    finally:
        engine.dispose()
