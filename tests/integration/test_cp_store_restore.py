"""A control plane whose SQLite store is restored from a backup notices it and converges.

The real app, a real Mosquitto, and a device played by a paho client: the store is
copied (SQLite's online backup), a rollout moves the device on, the copy is put back
and the app restarts. The device's retained reported state says it handled a revision
the store never issued: the store's epoch grows, that is logged and audited, and
desired states go out again signed, in the new epoch, past the device's revision.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from control_plane.config import ControlPlaneSettings
from control_plane.store.keys import Keyring
from control_plane.testing import reported_state
from protocols import (
    SignedDesiredState,
    decode,
    encode,
    load_trusted_keys,
    reported_topic,
    signed_desired_topic,
    verify_desired,
)
from tests.conftest import wait_for
from tests.integration.test_cp_mqtt import API, Device, TestClient, _release, create_app


@contextmanager
def running(settings: ControlPlaneSettings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_app(settings)) as client:
        token = settings.admin_token_path.read_text().strip()
        assert client.app.state.parkwatch.mqtt.wait_connected(10)  # type: ignore[attr-defined]
        yield client, {"Authorization": f"Bearer {token}"}


def test_a_store_restored_from_a_backup_is_detected_and_the_device_converges(
    tmp_path: Path, mosquitto: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", mqtt_url=mosquitto.url,
                                    mqtt_client_id=f"cp-{uuid.uuid4().hex[:8]}",
                                    rollout_tick_seconds=0.1)
    db = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    backup = tmp_path / "backup.db"
    device = Device(mosquitto.port, "cam-1-peer")
    try:
        with running(settings) as (client, headers):
            for d in ("cam-1", "cam-2"):
                assert client.post(f"{API}/devices", json={"device_id": d},
                                   headers=headers).status_code == 201
            release_id = _release(client, headers)
            with sqlite3.connect(db) as live, sqlite3.connect(backup) as copy:
                live.backup(copy)  # the nightly backup: cam-1 has no desired state yet
            for _ in range(2):  # two rollouts after the backup: revisions 1 and 2
                r = client.post(f"{API}/rollouts", json={"release_id": release_id,
                                                         "supersede": True}, headers=headers)
                assert r.status_code == 201, r.text
            # The device handled revision 2 (its reported state is retained).
            device.publish(reported_topic("cam-1"), encode(reported_state(
                "cam-1", release_id, revision=2)), retain=True)
            wait_for(lambda: (client.get(f"{API}/devices/cam-1", headers=headers).json()
                              .get("reported") or {}).get("desired_revision") == 2,
                     what="the report stored")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        with sqlite3.connect(backup) as copy, sqlite3.connect(db) as restored:
            copy.backup(restored)

        keys = load_trusted_keys(sorted(Keyring(settings.keys_dir).root.glob("*.pub.pem")))
        device.subscribe(signed_desired_topic("cam-1"))
        with caplog.at_level(logging.WARNING, logger="control_plane"), \
                running(settings) as (client, headers):
            def newest() -> Any:
                with device._lock:
                    payloads = [m.payload for m in device.received if m.payload]
                states = [verify_desired(decode(SignedDesiredState, p), keys) for p in payloads]
                return next((s for s in reversed(states) if s.epoch > 0), None)

            state = wait_for(newest, what="a desired state in a new epoch")
            assert state.revision > 2 and state.device_id == "cam-1"
            audit = client.get(f"{API}/audit", params={"action": "store.epoch"},
                               headers=headers).json()["items"]
            assert len(audit) == 1 and audit[0]["detail"]["epoch"] == state.epoch

            # The device handles it; a report about epoch 0 is older, whatever its revision.
            def report(d: str, revision: int | None, epoch: int | None) -> None:
                body = reported_state(d, release_id, revision=revision)
                device.publish(reported_topic(d), encode(
                    body.model_copy(update={"desired_epoch": epoch})), retain=True)

            def stored(d: str) -> Any:
                return client.get(f"{API}/devices/{d}", headers=headers).json()["reported"]

            report("cam-1", state.revision, state.epoch)
            wait_for(lambda: (stored("cam-1") or {}).get("desired_epoch") == state.epoch,
                     what="the device's report in the new epoch")
            report("cam-1", 99, None)
            report("cam-2", None, None)  # after cam-1's on the same connection: a marker
            wait_for(lambda: stored("cam-2"), what="the marker report")
            last = stored("cam-1")
            assert (last["desired_epoch"], last["desired_revision"]) == (state.epoch,
                                                                         state.revision)
        restored_lines = [r.getMessage() for r in caplog.records
                          if "restored from a backup" in r.getMessage()]
        assert len(restored_lines) == 1
        assert "handled desired revision 2 of epoch 0" in restored_lines[0]
    finally:
        device.close()
