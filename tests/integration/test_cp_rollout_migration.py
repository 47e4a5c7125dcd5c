"""Migration 0004 on a store with a rollout in progress: the engine carries it on."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from control_plane.rollouts import engine as rollout_engine
from control_plane.rollouts import service as rollouts
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import Device
from control_plane.testing import reported_state

ROWS = [
    "INSERT INTO model (id, name, created_at) VALUES (1, 'petnet', CURRENT_TIMESTAMP)",
    "INSERT INTO model_version (id, model_id, number, version, primary_sha256, spec, "
    "created_by, created_at) VALUES (1, 1, 1, '1', 'aa', '{}', 't', CURRENT_TIMESTAMP)",
    "INSERT INTO release (release_id, model_version_id, model_name, model_version, key_id, "
    "primary_sha256, manifest, created_by, created_at) VALUES ('r1', 1, 'petnet', '1', 'k', "
    "'aa', '{}', 't', CURRENT_TIMESTAMP)",
    "INSERT INTO device (device_id, labels, online, desired_revision, desired_release_id, "
    "desired_rollout_id, created_at) VALUES ('cam-1', '{}', true, 1, 'r1', 'ro-old', "
    "CURRENT_TIMESTAMP)",
    "INSERT INTO rollout (rollout_id, release_id, mode, state, created_by, created_at, "
    "updated_at) VALUES ('ro-old', 'r1', 'active', 'in_progress', 't', CURRENT_TIMESTAMP, "
    "CURRENT_TIMESTAMP)",
    "INSERT INTO rollout_device (rollout_id, device_id, wave, state, revision, updated_at) "
    "VALUES ('ro-old', 'cam-1', 0, 'pending', 1, CURRENT_TIMESTAMP)",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'cp.db'}"


def test_a_rollout_from_before_waves_completes_after_the_upgrade(database: str) -> None:
    upgrade(database, "0003")
    engine = create_db_engine(database)
    try:
        with engine.begin() as conn:
            for sql in ROWS:
                conn.execute(sa.text(sql))
        upgrade(database)
        with Session(engine, expire_on_commit=False) as s:
            view = rollouts.get_rollout(s, "ro-old")
            assert [(w.number, w.state, w.device_count) for w in view.waves] == [
                (1, "running", 1)]
            assert view.policy.waves == ["100%"] and view.policy.gates.min_windows == 0
            device = s.get(Device, "cam-1")
            assert device is not None
            assert rollouts.on_reported(s, device, reported_state("cam-1", "r1")) \
                == "acknowledged"
            assert rollout_engine.tick(s, "ro-old") == []
            s.commit()
            assert rollouts.get_rollout(s, "ro-old").state == "completed"
    finally:
        engine.dispose()
