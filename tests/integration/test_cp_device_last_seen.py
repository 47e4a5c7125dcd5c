"""``last_seen`` of a run of device messages (SQLite and PostgreSQL): a device whose
status or reported state the run writes gets it in that UPDATE (no second UPDATE of its
row: on PostgreSQL every UPDATE writes the whole row again), a device that only sent an
event gets it from ``touch``, and it never goes back."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.store.models import Device, utc_now
from protocols import DeviceEvent, encode, events_topic
from tests.integration.test_cp_ingest_device_runs import ingest, message, rollout_traffic


def touches(statements: list[str]) -> list[str]:
    """The UPDATEs of last_seen alone (``touch``)."""
    return [s for s in statements if s.startswith("update device set last_seen")
            and "status_at" not in s and "reported" not in s]


def test_a_rollout_s_messages_write_each_device_row_once_for_last_seen(store: Engine) -> None:
    fleet, _ro, messages = rollout_traffic(store, 10)
    statements, _commits = ingest(store, messages)
    updates = [s for s in statements if s.startswith("update device set")]
    # the statuses' and the reports' executemany UPDATEs; no UPDATE of last_seen alone
    assert len(updates) == 2 and not touches(statements), updates
    assert all("last_seen" in s for s in updates)
    with Session(store) as s:
        devices = [d for d in s.exec(select(Device)) if d.device_id in fleet.ids]
    assert len(devices) == 10
    assert all(d.last_seen is not None and d.last_seen == d.reported_at for d in devices)


def test_an_event_alone_touches_and_last_seen_never_goes_back(store: Engine) -> None:
    fleet, _ro, messages = rollout_traffic(store, 3)
    late, quiet = fleet.ids[0], fleet.ids[1]
    ahead = utc_now() + timedelta(hours=1)  # a clock stepped back since (ours)
    with Session(store) as s:
        device = s.get(Device, late)
        assert device is not None
        device.last_seen = ahead
        s.add(device)
        s.commit()
    only_event = message(events_topic(quiet), encode(DeviceEvent(
        device_id=quiet, seq=1, kind="activated", release_id="r2")))
    statements, _commits = ingest(store, [
        m for m in messages if m.topic.split("/")[-2] != quiet] + [only_event])
    assert len(touches(statements)) == 1
    with Session(store) as s:
        got = {d.device_id: d for d in s.exec(select(Device))}
    assert got[late].last_seen == ahead and got[late].reported_at is not None
    assert got[quiet].last_seen is not None and got[quiet].reported_at is None
