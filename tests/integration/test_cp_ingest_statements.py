"""What a batch of telemetry windows costs the store in statements (on PostgreSQL each is
a round trip, and on a loaded machine each round trip waits for the server process to be
scheduled): a fixed number whatever the batch's size, and a release's reference profile
read once per process, not once a batch. Real SQLite file and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from control_plane.drift import synthetic
from control_plane.services import telemetry_rollup_fold
from control_plane.services.telemetry import ingest_windows
from control_plane.store import db
from control_plane.store.models import Device, TelemetryRollup, TelemetryWindowRecord
from control_plane.testing import register_profiled_release
from protocols import TelemetryWindow

PROFILE = synthetic.profile(seed=0)
DEVICES = ("cam-a", "cam-b", "cam-c")
NOW = datetime(2026, 6, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    db.upgrade(database_url)
    engine = db.create_db_engine(database_url)
    with Session(engine) as s:
        s.add_all([Device(device_id=d, labels={}) for d in DEVICES])
        register_profiled_release(s, "rel-a", PROFILE)
        s.commit()
    yield engine
    engine.dispose()


def batch(seq: int, release_id: str, devices: tuple[str, ...] = DEVICES) -> list[TelemetryWindow]:
    rng = np.random.default_rng(seq)
    return [TelemetryWindow.model_validate(synthetic.window(
        PROFILE, d, seq, rng=rng, frames=20, release_id=release_id,
        start=NOW - timedelta(minutes=30 - seq))) for d in devices]


def statements_of(engine: Engine, windows: list[TelemetryWindow],
                  received_at: datetime = NOW) -> list[str]:
    """The statements one batch sends, in a transaction of its own."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as s:
            assert ingest_windows(s, windows, received_at=received_at) == {"stored": len(windows)}
            s.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return sent


def reads_releases(statements: list[str]) -> bool:
    return any("model_version" in s for s in statements)


def test_a_release_profile_is_read_once_not_once_a_batch(engine: Engine) -> None:
    assert reads_releases(statements_of(engine, batch(0, "rel-a")))
    later = statements_of(engine, batch(1, "rel-a"))
    assert not reads_releases(later)
    bigger = statements_of(engine, batch(2, "rel-a") + batch(3, "rel-a"))
    assert len(bigger) == len(later)  # whatever the batch's size
    if engine.dialect.name == "postgresql":
        assert len(later) == 3  # lookup, insert, rollup upsert (then the commit)
    with Session(engine) as s:
        rows = s.exec(select(TelemetryRollup).where(TelemetryRollup.camera_id == "")).all()
    assert sorted(r.windows for r in rows) == [4, 4, 4]


def test_a_release_registered_after_its_first_windows_is_binned_from_then_on(
    engine: Engine,
) -> None:
    """An unknown release is not remembered as one without a profile."""
    statements_of(engine, batch(0, "rel-new", ("cam-a",)))
    with Session(engine) as s:
        register_profiled_release(s, "rel-new", PROFILE)
        s.commit()
    next_hour = NOW + timedelta(hours=1)
    assert reads_releases(statements_of(engine, batch(1, "rel-new", ("cam-a",)), next_hour))
    with Session(engine) as s:
        rows = s.exec(select(TelemetryRollup).where(TelemetryRollup.camera_id == "",
                                                    TelemetryRollup.release_id == "rel-new")
                      .order_by(col(TelemetryRollup.bucket))).all()
    assert [(r.windows, sum(r.counts) > 0) for r in rows] == [(1, False), (1, True)]


def test_windows_of_a_release_registered_within_their_hour_are_all_kept(
    engine: Engine,
) -> None:
    """The hour's row was started without counts (the release had no profile yet); the
    windows after the registration add into it, and so does the day's fold. Before, the
    addition failed (SQLite: the batch was refused, its windows logged and lost once
    acknowledged; PostgreSQL: the row's counts turned to NULLs)."""
    statements_of(engine, batch(0, "rel-new", ("cam-a",)))
    with Session(engine) as s:
        register_profiled_release(s, "rel-new", PROFILE)
        s.commit()
    statements_of(engine, batch(1, "rel-new", ("cam-a",)) + batch(2, "rel-new", ("cam-a",)),
                  NOW + timedelta(minutes=5))
    with Session(engine) as s:
        hour = s.exec(select(TelemetryRollup).where(
            TelemetryRollup.camera_id == "", TelemetryRollup.release_id == "rel-new")).one()
        assert hour.windows == 3
        assert all(c is not None for c in hour.counts) and sum(hour.counts) > 0
        counted = list(hour.counts)
        assert telemetry_rollup_fold.fold(s, NOW + timedelta(days=1, hours=2)) > 0
        s.commit()
        day = s.exec(select(TelemetryRollup).where(
            TelemetryRollup.camera_id == "", TelemetryRollup.release_id == "rel-new",
            TelemetryRollup.grain == "day")).one()
    assert (day.windows, list(day.counts)) == (3, counted)


def test_payloads_with_line_breaks_and_quotes_are_stored_as_sent(engine: Engine) -> None:
    """The insert sends a batch's payloads as lines of one text: a line break, a quote or a
    backslash inside a payload's strings must not cut it or shift the next window's key."""
    odd = 'v1\n"two"\\ \r\n\u2028 \u00e9 \\n'
    windows = [w.model_copy(update={"model_version": f"{odd}{i}"})
               for i, w in enumerate(batch(1, "rel-a"))]
    with Session(engine) as s:
        assert ingest_windows(s, windows, received_at=NOW) == {"stored": len(windows)}
        s.commit()
    with Session(engine) as s:
        stored = {r.device_id: r for r in s.exec(select(TelemetryWindowRecord))}
    for w in windows:
        row = stored[w.device_id]
        assert row.payload == w.model_dump(mode="json", by_alias=True)
        assert (row.seq, row.window_start, row.window_end, row.release_id) == (
            w.seq, w.window_start, w.window_end, w.release_id)
