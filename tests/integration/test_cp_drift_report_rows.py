"""The drift reports an analysis writes in bulk (``alerts.record_drift_reports``: the
statistics serialized by pydantic-core, not the JSON column's ``json.dumps``) read back
as the ones written one at a time through the ORM (``alerts.record_drift_report``), in
a real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from control_plane.services import alerts
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import DriftReport

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def report(i: int, statistics: dict[str, Any]) -> dict[str, Any]:
    return {"device_id": None, "release_id": f"rel-{i}", "window_start": T0,
            "window_end": T0, "window_count": 60 + i, "sample_count": 3600 + i,
            "drifted": bool(i % 2), "statistics": statistics}


def statistics(i: int) -> dict[str, Any]:
    """Figures as an analysis writes them: nested features, shortest-repr floats, tiny and
    huge ones, None, lists, booleans, non-ASCII text."""
    return {"samples": 175200 + i, "judged": True, "psi": 0.1 + 0.2, "tiny": 1e-7 * (i + 1),
            "huge": 1e22, "neg": -0.0, "none": None, "drifted_features": ["input.brightness"],
            "features": {"confidence": {"psi": 0.006455616960857467, "ks": i / 3}},
            "verdict": {"feature": "scène.zoom", "statistic": 2.5, "level": 0.25},
            "cameras": [{"camera_id": "gate", "condition": "night", "holds": i == 1}]}


def test_reports_written_in_bulk_read_back_as_written_one_at_a_time(database_url: str) -> None:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as s:
            alerts.record_drift_reports(s, [report(i, statistics(i)) for i in range(3)])
            for i in range(3):
                alerts.record_drift_report(s, **report(i, statistics(i)))
            s.commit()
        with Session(engine) as s:
            rows = s.exec(select(DriftReport).order_by(col(DriftReport.id))).all()
        got = [r.model_dump(exclude={"id", "created_at"}) for r in rows]
        assert len(got) == 6
        assert got[:3] == got[3:]
        assert got[1]["statistics"] == statistics(1)
    finally:
        engine.dispose()


def test_infinite_and_missing_figures_are_kept_in_sqlite(tmp_path: Any) -> None:
    """A level that cannot be reached is ``inf`` (a feature of one bin): SQLite's JSON
    column holds it as ``json.dumps`` writes it (``Infinity``), and reads it back."""
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    try:
        with Session(engine) as s:
            alerts.record_drift_reports(s, [report(0, {"level": math.inf, "p": math.nan,
                                                       "low": -math.inf})])
            s.commit()
        with Session(engine) as s:
            got = s.exec(select(DriftReport)).one().statistics
        assert got["level"] == math.inf and got["low"] == -math.inf and math.isnan(got["p"])
    finally:
        engine.dispose()
