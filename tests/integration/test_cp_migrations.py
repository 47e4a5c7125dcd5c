"""Alembic: upgrade creates the schema on an empty database and matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from control_plane.store import models  # noqa: F401  (registers the tables)
from control_plane.store.db import alembic_config, create_db_engine, current_revision, upgrade

TABLES = {"artifact", "audit_entry", "device", "model", "api_token", "device_event",
          "model_version", "telemetry_window", "release", "rollout", "rollout_device",
          "model_alias", "dataset_version", "device_group", "drift_report", "alert",
          "training_job", "sample", "rollout_wave"}
# The newest migration: each issue adds one, so the test follows the scripts.
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'fresh' / 'cp.db'}"


def test_upgrade_creates_schema_matching_models(empty_database: str) -> None:
    upgrade(empty_database)
    upgrade(empty_database)  # idempotent
    engine = create_db_engine(empty_database)
    try:
        assert current_revision(engine) == HEAD
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_sqlite_engine_has_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_upgrade_from_0001_keeps_rows_and_downgrade_works(empty_database: str) -> None:
    """0002 on a store with data: telemetry ids become BIGINT; the downgrade undoes it."""
    upgrade(empty_database, "0001")
    engine = create_db_engine(empty_database)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO device (device_id, labels, online, desired_revision, created_at) "
                "VALUES ('cam-1', '{}', false, 0, CURRENT_TIMESTAMP)"))
            conn.execute(sa.text(
                "INSERT INTO telemetry_window (device_id, seq, window_start, window_end, "
                "received_at, payload) VALUES ('cam-1', 1, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{}')"))
        upgrade(empty_database)
        assert current_revision(engine) == HEAD
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM telemetry_window")).scalar() == 1
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(
                    "SELECT setval('telemetry_window_id_seq', 3000000000)"))
            conn.execute(sa.text(
                "INSERT INTO telemetry_window (device_id, seq, window_start, window_end, "
                "received_at, payload) VALUES ('cam-1', 2, CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{}')"))
            top = conn.execute(sa.text("SELECT max(id) FROM telemetry_window")).scalar()
        assert top is not None and (top > 2**31 or engine.dialect.name == "sqlite")
        from alembic import command

        from control_plane.store.db import alembic_config
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM telemetry_window WHERE seq = 2"))
            if engine.dialect.name == "postgresql":  # ids must fit INTEGER again
                conn.execute(sa.text("SELECT setval('telemetry_window_id_seq', 10)"))
            cfg = alembic_config(empty_database)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert current_revision(engine) == "0001"
        assert "training_job" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_0020_baseline_attempts_upgrade_and_downgrade(empty_database: str) -> None:
    """0020 adds the table of baselines not learned yet on a store with devices; the
    downgrade drops it and leaves the rest; upgrading again brings it back empty."""
    from alembic import command

    upgrade(empty_database, "0019")
    engine = create_db_engine(empty_database)
    attempt = sa.text(
        "INSERT INTO drift_baseline_attempt (device_id, camera_id, condition, release_id, "
        "reason, message, windows, windows_needed, first_tried_at, tried_at) VALUES ('cam-1', "
        "'gate', 'night', 'r-1', 'too_few_windows', 'needs 240', 12, 240, CURRENT_TIMESTAMP, "
        "CURRENT_TIMESTAMP)")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO device (device_id, labels, online, desired_revision, created_at) "
                "VALUES ('cam-1', '{}', false, 0, CURRENT_TIMESTAMP)"))
        assert "drift_baseline_attempt" not in sa.inspect(engine).get_table_names()
        upgrade(empty_database, "0020")
        with engine.begin() as conn:
            conn.execute(attempt)
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # one per key
                conn.execute(attempt)
        with engine.begin() as conn:
            cfg = alembic_config(empty_database)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0019")
        assert current_revision(engine) == "0019"
        names = sa.inspect(engine).get_table_names()
        assert "drift_baseline_attempt" not in names and "drift_baseline" in names
        upgrade(empty_database)
        with engine.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM drift_baseline_attempt")).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM device")).scalar() == 1
    finally:
        engine.dispose()


def test_0021_rollup_pages_keep_room_for_updates(empty_database: str) -> None:
    """0021 fills telemetry_rollup's pages to 60 % on PostgreSQL (so that an hour row's next
    version fits beside it), and the downgrade takes the setting back; SQLite has none."""
    from alembic import command

    def options(engine: sa.Engine) -> list[str]:
        if engine.dialect.name != "postgresql":
            return []
        with engine.connect() as conn:
            found = conn.execute(sa.text(
                "SELECT reloptions FROM pg_class WHERE relname = 'telemetry_rollup'")).scalar()
        return list(found or [])

    upgrade(empty_database, "0020")
    engine = create_db_engine(empty_database)
    postgres = engine.dialect.name == "postgresql"
    try:
        assert options(engine) == []
        upgrade(empty_database, "0021")
        assert options(engine) == (["fillfactor=60"] if postgres else [])
        with engine.begin() as conn:
            cfg = alembic_config(empty_database)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0020")
        assert current_revision(engine) == "0020"
        assert options(engine) == []
    finally:
        engine.dispose()
