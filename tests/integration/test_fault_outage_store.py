"""Broker outage during telemetry, end to end: a real agent, Mosquitto restarted under it,
the control plane storing. Every window the agent queued reaches the store once."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.store.keys import Keyring
from tests.agent_kit import looping_camera, make_rig, release_server, wait_until
from tests.conftest import start_mosquitto

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.timeout(180)]
DEVICE = "park1-gate"  # the rig's agent


def test_outage_loses_no_window_and_stores_none_twice(tmp_path: Path) -> None:
    state = tmp_path / "broker"
    state.mkdir()
    # Persistence, so the control plane's session (and its queued messages) survive.
    broker = start_mosquitto(state, f"persistence true\npersistence_location {state}/\n"
                             "user root\n")
    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", mqtt_url=broker.url,
                                    mqtt_client_id="cp-outage-test")
    Keyring(settings.keys_dir).init()
    try:
        with TestClient(create_app(settings)) as client, release_server() as server:
            admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
            assert client.app.state.parkwatch.mqtt.wait_connected(10)  # type: ignore[attr-defined]
            r = client.post("/api/v1/devices", json={"device_id": DEVICE}, headers=admin)
            assert r.status_code == 201, r.text
            engine = sa.create_engine(settings.resolved_database_url)

            def seqs() -> list[int]:
                with engine.connect() as conn:
                    rows = conn.execute(sa.text(
                        "SELECT seq FROM telemetry_window WHERE device_id = :d ORDER BY seq"),
                        {"d": DEVICE}).all()
                return [int(r[0]) for r in rows]

            rig = make_rig(tmp_path, broker.url, server)
            try:
                agent = rig.start_agent(rig.config(looping_camera(tmp_path), window_seconds=1))
                wait_until(lambda: len(seqs()) >= 2, 30, "two windows stored")
                broker.stop()
                wait_until(lambda: agent.outbox.count() >= 3, 15, "windows queued on the agent")
                queued = agent.outbox.count()
                broker.start()
                wait_until(lambda: agent.outbox.count() == 0 or None, 45, "outbox drained")
                stored = wait_until(lambda: (s := seqs()) and len(s) >= 6
                                    and s == list(range(len(s))) and s, 45,
                                    f"contiguous seqs in the store; have {seqs()}")
                print(f"injected: broker stopped with {queued} windows queued, restarted -> "
                      f"observed stored seqs {stored[0]}..{stored[-1]}, none missing, "
                      "none twice")
                assert len(stored) == len(set(stored))
            finally:
                for a in list(rig.agents):
                    a.stop()
                rig.observer.close()
                engine.dispose()
    finally:
        broker.stop()
