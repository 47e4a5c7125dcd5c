"""Window ingest on a real PostgreSQL: what ingest workers sharing a fleet need of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.services.telemetry import ingest_windows
from control_plane.store import db
from control_plane.store.models import Device, TelemetryWindowRecord
from control_plane.testing import telemetry_window

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
