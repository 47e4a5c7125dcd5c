"""Device messages and telemetry written at once do not deadlock on PostgreSQL.

A run of device messages locks its devices' rows (``device_messages._read``), one at a
time in device order; a telemetry batch touches its devices' ``last_seen`` (skipping
rows another transaction holds) and then inserts windows, whose foreign key takes a
KEY SHARE lock on each device row. A FOR UPDATE lock conflicts with KEY SHARE, so a run
holding one device and waiting for another that a telemetry batch had touched, while
that batch inserted a window of the first device, was a deadlock: PostgreSQL detects it
after ``deadlock_timeout`` (1 s) and aborts one side. With the two ingest lanes
(``ingest/lanes.py``) every worker writes both at once. The run locks FOR NO KEY UPDATE
(it never changes a device's key), which leaves foreign-key checks free."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from control_plane.services import telemetry
from control_plane.services.device_messages import StatusReceipt, store_run
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import telemetry_window
from protocols import DeviceStatus
from tests.conftest import wait_for_a_lock_wait

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    upgrade(postgres_url)
    eng = create_db_engine(postgres_url)
    with session_scope(eng) as session:
        session.add_all([Device(device_id=d, labels={}) for d in ("cam-1", "cam-2")])
    yield eng
    eng.dispose()


def test_a_device_run_and_a_telemetry_batch_over_the_same_devices_both_commit(
    engine: Engine,
) -> None:
    errors: list[BaseException] = []
    with Session(engine) as batch:
        # The telemetry batch touches cam-2 first (its row now locked by this transaction).
        telemetry.ingest_windows(batch, [telemetry_window("cam-2", 1)])

        def device_run() -> None:  # locks cam-1, then waits for cam-2
            try:
                with session_scope(engine) as session:
                    store_run(session, [StatusReceipt(DeviceStatus(
                        device_id=d, state="online", session="0123456789ab-1"))
                        for d in ("cam-1", "cam-2")])
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        runner = threading.Thread(target=device_run)
        runner.start()
        wait_for_a_lock_wait(engine, "the device run waiting for cam-2")
        # A window of cam-1, whose row the device run holds: its foreign key check
        # must not wait for the run (which waits for this transaction).
        telemetry.ingest_windows(batch, [telemetry_window("cam-1", 1)])
        batch.commit()
        runner.join(30)
    assert not runner.is_alive()
    assert not errors, errors
    with Session(engine) as session:
        assert all(session.get(Device, d).online for d in ("cam-1", "cam-2"))  # type: ignore[union-attr]
