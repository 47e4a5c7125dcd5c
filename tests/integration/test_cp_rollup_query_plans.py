"""Query plans of the analysis's hot reads, on a real migrated SQLite store.

The probes for hour rows not folded yet go through the partial index that holds only
those rows (``ix_rollup_unfolded``): by the primary key they read every hour row of their
range, millions in a large fleet's week, on every analysis (``telemetry_rollups.day_spans``)
and fold pass. Each device's latest windows are read by receipt time
(``ix_telemetry_received``): by the device index they read every window each device has
kept, a day's 1,440 each, to find the latest few."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from control_plane.drift import collect, synthetic
from control_plane.drift.summary import Summary
from control_plane.services import telemetry_rollups
from control_plane.store import db
from control_plane.store.models import TelemetryRollup


def test_the_unfolded_hours_probe_reads_the_partial_index(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    db.upgrade(url)
    engine = db.create_db_engine(url)
    since = datetime(2026, 6, 1, tzinfo=UTC)
    query = sa.select(sa.func.min(col(TelemetryRollup.bucket))).where(
        telemetry_rollups.unfolded_hours(since, since + timedelta(days=7)))
    compiled = query.compile(engine)
    params = tuple(compiled.params[k] for k in compiled.positiontup or [])
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", params))
    engine.dispose()
    assert "ix_rollup_unfolded" in plan, plan


def test_the_latest_windows_are_read_by_receipt_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    db.upgrade(url)
    engine = db.create_db_engine(url)
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "telemetry_window" in statement:
            statements.append((statement, params))

    end = datetime(2026, 6, 2, tzinfo=UTC)
    profile = synthetic.profile()
    devices = {("rel", f"cam-{d}"): collect.DeviceWindows(Summary.empty(profile), deque(), end,
                                                          end) for d in range(3)}
    sa.event.listen(engine, "before_cursor_execute", seen)
    start = end - timedelta(days=1)
    with Session(engine) as s:
        collect.read_recent(s, devices, start, end, None, 5)
        collect.slice_ids(s, start, end, "rel", 5)
        # The first slice by the ids a fleet-wide pass found (``slice_ids``), then wider.
        collect.read_recent(s, devices, start, end, None, 5, {"cam-0": [1, 2], "cam-2": [3]})
    sa.event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) > 3
    with engine.connect() as conn:
        for statement, params in statements:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {statement}", params))
            assert "ix_telemetry_received" in plan or "INTEGER PRIMARY KEY" in plan, plan
            assert "ix_telemetry_device_start" not in plan, plan
    engine.dispose()
