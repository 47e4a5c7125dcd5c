"""Snapshots do not pile up: the periodic retention deletes old ones and their JPEGs,
keeps each camera's newest answered one, and never removes a JPEG a sample still uses
(real SQLite and PostgreSQL, real files in the artifact store)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select

from control_plane.config.drift import DriftSettings
from control_plane.config.retention import RetentionSettings
from control_plane.drift.scheduler import drift_task
from control_plane.store.artifacts import LocalContentStore
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import CameraSnapshot, Device, Sample, utc_now


def test_old_snapshots_and_their_jpegs_go_the_newest_per_camera_stays(
    tmp_path: Path, database_url: str
) -> None:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    store = LocalContentStore(tmp_path / "artifacts")
    now = utc_now()

    def snapshot(command: str, camera: str, days_ago: float, answered: bool) -> str | None:
        at = now - timedelta(days=days_ago)
        sha = store.put([f"jpeg of {command}".encode()])[0] if answered else None
        session.add(CameraSnapshot(
            command_id=command, device_id="gate", camera_id=camera, requested_by="op",
            requested_at=at, expires_at=at + timedelta(seconds=60),
            received_at=at if answered else None, captured_at=at if answered else None,
            image_sha256=sha))
        return sha

    with session_scope(engine) as session:
        session.add(Device(device_id="gate", labels={}))
        session.flush()
        old = snapshot("old", "lawn", 20, answered=True)
        shared = snapshot("shared", "lawn", 19, answered=True)
        snapshot("unanswered", "lawn", 18, answered=False)
        newest_old = snapshot("newest-of-pond", "pond", 30, answered=True)
        recent = snapshot("recent", "lawn", 1, answered=True)
        assert shared is not None
        session.add(Sample(device_id="gate", camera_id="lawn", predicted_label="dog",
                           confidence=0.9, image_sha256=shared, image_size=10,
                           captured_at=now))

    task = drift_task(engine, DriftSettings(), RetentionSettings(snapshots_keep_days=7),
                      artifacts=store)
    assert task.run_once()

    with Session(engine) as session:
        kept = {row.command_id for row in session.exec(select(CameraSnapshot)).all()}
    assert kept == {"newest-of-pond", "recent"}
    assert old is not None and not store.exists(old)
    assert store.exists(shared)  # a sample still shows it
    assert newest_old is not None and store.exists(newest_old)
    assert recent is not None and store.exists(recent)
    engine.dispose()
