"""Two ingest workers store one device's statuses at once (a shared subscription hands a
reconnecting agent's messages to either): the newer connection's ``online`` must stand
whichever commits first. Real PostgreSQL (SQLite has one writer: nothing to race)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from control_plane.services.device_messages import StatusReceipt, store_run
from control_plane.store import db
from control_plane.store.models import Device
from protocols import DeviceStatus
from tests.conftest import wait_for_a_lock_wait

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    db.upgrade(postgres_url)
    engine = db.create_db_engine(postgres_url)
    with Session(engine) as s:
        s.add(Device(device_id="cam-a", labels={}, online=True, status_session="0a1b2c3d-1"))
        s.commit()
    yield engine
    engine.dispose()


def status(state: str, session: str) -> StatusReceipt:
    return StatusReceipt(DeviceStatus(device_id="cam-a", state=state, session=session))


def test_the_will_of_an_earlier_connection_cannot_end_a_newer_one_stored_beside_it(
    engine: Engine,
) -> None:
    """Worker A stores connection 2's ``online`` and has not committed when worker B
    judges connection 1's Will (sent by the broker when that connection dropped). B must
    judge it against A's commit, not against the row as it was: before, B read connection
    1's ``online``, took its Will as final, and the device showed offline while connected."""
    first = Session(engine)
    store_run(first, [status("online", "0a1b2c3d-2")])  # row written, not committed
    done = threading.Event()

    def second() -> None:
        with Session(engine) as s:
            store_run(s, [status("offline", "0a1b2c3d-1")])
            s.commit()
        done.set()

    worker = threading.Thread(target=second)
    worker.start()
    try:
        wait_for_a_lock_wait(engine, "the second worker never waited for the first")
        first.commit()
    finally:
        first.close()
        worker.join(30)
    assert done.is_set()
    with Session(engine) as s:
        device = s.get(Device, "cam-a")
        assert device is not None
        assert (device.online, device.status_session) == (True, "0a1b2c3d-2")
