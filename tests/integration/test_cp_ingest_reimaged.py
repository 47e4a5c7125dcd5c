"""A re-imaged agent (its data folder lost) numbers its telemetry from seq 0 again: a real
agent, a real Mosquitto and the control plane's real ingest into SQLite. Every window of
the new instance is stored beside the old one's, none is taken for a copy."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from control_plane.ingest.adapter import MqttAdapter
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from tests.agent_kit import Rig, looping_camera, running_rig, wait_until
from tests.conftest import Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.fault]
DEVICE = "park1-gate"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    eng = create_db_engine(url)
    with session_scope(eng) as session:
        session.add(Device(device_id=DEVICE, labels={}))
    yield eng
    eng.dispose()


def stored(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT instance, seq FROM telemetry_window"))
        return [(str(i), int(s)) for i, s in rows]


def test_reimaged_agent_windows_are_stored_beside_the_old_ones(
    tmp_path: Path, engine: Engine, mosquitto: Mosquitto
) -> None:
    adapter = MqttAdapter(mosquitto.url, engine, client_id="cp-ingest")
    adapter.start()
    try:
        assert adapter.wait_connected(15)
        with running_rig(tmp_path, mosquitto.url) as rig:
            first = run_agent_until(rig, engine, windows=4)
            old = {i for i, _ in first}
            assert len(old) == 1 and "" not in old
            shutil.rmtree(rig.tmp / "data")  # the new SD card
            again = run_agent_until(rig, engine, windows=len(first) + 3)
            (instance,) = {i for i, _ in again} - old
            sent = {w["seq"] for w in rig.observer.of("telemetry")
                    if w.get("instance") == instance}
            wait_until(lambda: {s for i, s in stored(engine) if i == instance} >= sent, 10,
                       "every window the new instance sent stored")
    finally:
        adapter.stop()
    new_seqs = sorted(s for i, s in stored(engine) if i == instance)
    assert new_seqs[:3] == [0, 1, 2]  # numbered from 0 again, and stored
    assert len(stored(engine)) == len(set(stored(engine)))


def run_agent_until(rig: Rig, engine: Engine, windows: int) -> list[tuple[str, int]]:
    agent = rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    def enough() -> list[tuple[str, int]] | None:
        rows = stored(engine)
        return rows if len(rows) >= windows else None

    try:
        return wait_until(enough, 30, f"{windows} windows stored")
    finally:
        rig.stop_agent(agent)
