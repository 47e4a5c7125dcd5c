"""Device status against a real store (SQLite file and PostgreSQL): online/offline go by
arrival and by the agent's session, never by the device's clock.

The wire of the bug this guards against: ``online at 16:36:49.03``, then the Last Will
``offline at 16:36:47.03`` (built when the connection began); the store kept ``online``
for ever and rollout waves that included the dead device failed on their ack timeout.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from control_plane.services import devices
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from protocols import DeviceStatus

pytestmark = pytest.mark.fault
T0 = datetime(2026, 12, 6, 16, 36, 47, 30_000, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    with session_scope(engine) as session:
        session.add(Device(device_id="cam-1"))
    try:
        yield engine
    finally:
        engine.dispose()


def arrive(engine: Engine, *statuses: tuple[str, str | None, datetime]) -> bool:
    """Apply statuses in this arrival order, each in its own transaction (as ingest does);
    whether the device is online afterwards."""
    for state, session_id, at in statuses:
        with session_scope(engine) as session:
            devices.apply_status(session, DeviceStatus(
                device_id="cam-1", state=state, at=at, session=session_id))  # type: ignore[arg-type]
    with session_scope(engine) as session:
        device = session.get(Device, "cam-1")
        assert device is not None
        return device.online


def test_a_last_will_with_an_older_clock_still_ends_the_connection(engine: Engine) -> None:
    online = arrive(engine, ("online", "a1b2c3d4e5f6-1", T0 + timedelta(seconds=2)),
                    ("offline", "a1b2c3d4e5f6-1", T0))
    print(f"injected: online at {T0 + timedelta(seconds=2):%H:%M:%S.%f}, then its Will at "
          f"{T0:%H:%M:%S.%f} -> observed online={online}")
    assert online is False


def test_an_agent_without_sessions_goes_by_arrival(engine: Engine) -> None:
    assert arrive(engine, ("online", None, T0 + timedelta(days=1)), ("offline", None, T0)) is False
    assert arrive(engine, ("online", None, T0 - timedelta(days=365))) is True


def test_a_late_will_of_a_replaced_process_does_not_end_the_new_one(engine: Engine) -> None:
    """A restart within the keepalive: the broker sends the old Will as the new process
    connects, and two ingest workers may store them in either order."""
    old, new = "aaaaaaaaaaaa-3", "bbbbbbbbbbbb-1"
    assert arrive(engine, ("online", old, T0), ("online", new, T0),
                  ("offline", old, T0)) is True
    assert arrive(engine, ("offline", new, T0)) is False  # the new one's own end counts


def test_within_one_process_the_later_connection_wins(engine: Engine) -> None:
    p = "cccccccccccc"
    assert arrive(engine, ("online", f"{p}-2", T0), ("offline", f"{p}-1", T0),
                  ("online", f"{p}-1", T0)) is True
    assert arrive(engine, ("offline", f"{p}-2", T0), ("online", f"{p}-2", T0)) is False
    assert arrive(engine, ("online", f"{p}-10", T0 - timedelta(hours=1))) is True
