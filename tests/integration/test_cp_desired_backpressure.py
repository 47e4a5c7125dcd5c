"""A wave larger than the MQTT client's outgoing queue: every device gets its desired state.

Each desired state is two QoS 1 messages (signed and plain), and the client holds at
most ``mqtt_max_queued_messages`` unacknowledged: a 10,000-device wave is 20,000. Here
the cap is 20 and the wave 60 devices, over a link with 300 ms of latency, so the queue
fills long before the broker's first acknowledgements come back. Both publishers: one
beside ingest on SQLite (it must not wait for PUBACKs under the database's write lock)
and one that waits for them. Afterwards the broker's retained desired state of every
device must be the store's.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlmodel import Session, select

from control_plane.config import ControlPlaneSettings
from control_plane.config.rollout_policy import RolloutPolicy
from control_plane.ingest.adapter import MqttAdapter
from control_plane.rollouts import service as rollouts
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import Device
from tests.conftest import Mosquitto
from tests.integration.test_cp_desired_order import SlowLink, retained
from tests.rollout_kit import GATES, Fleet

DEVICES = 60
CAP = 20  # messages: ten devices' worth
ONE_WAVE = RolloutPolicy(waves=["100%"], max_devices_per_minute=None, spread_label=None,
                         gates=GATES)


@pytest.mark.parametrize("beside_ingest", [True, False], ids=["beside-ingest", "waits-acks"])
def test_a_wave_larger_than_the_client_queue_reaches_every_device(
    mosquitto: Mosquitto, tmp_path: Path, beside_ingest: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'cp.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", database_url=url,
                                    mqtt_max_queued_messages=CAP)
    link = SlowLink(mosquitto.port, 0.3)
    adapter = MqttAdapter(link.url, engine, client_id=f"cp-{uuid.uuid4().hex[:6]}",
                          subscribe=beside_ingest, clean_session=True,
                          max_queued_messages=settings.mqtt_max_queued_messages)
    adapter.start()
    try:
        Fleet(engine, DEVICES)
        assert adapter.wait_connected(30)
        with Session(engine, expire_on_commit=False) as s:
            rollouts.start_rollout(s, adapter, "r2", None, "active", who="ops",
                                   policy=ONE_WAVE)
        with Session(engine) as s:
            held = {d.device_id: (d.desired_revision, d.desired_release_id)
                    for d in s.exec(select(Device)).all()}
        assert set(held.values()) == {(2, "r2")}  # the whole fleet in one wave
        got = retained(mosquitto, DEVICES)
        assert {d: (got[d].revision, got[d].release_id) for d in got} == held
    finally:
        adapter.stop()
        link.close()
        engine.dispose()
