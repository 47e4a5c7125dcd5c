"""The probes for hour rows not folded yet go through the partial index that holds only
those rows (``ix_rollup_unfolded``), on a real migrated SQLite store: by the primary key
they read every hour row of their range, millions in a large fleet's week, on every
analysis (``telemetry_rollups.day_spans``) and fold pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

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
