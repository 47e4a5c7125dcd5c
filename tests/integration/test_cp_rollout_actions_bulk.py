"""Abort, roll back and resume at fleet size, on a real store (SQLite and PostgreSQL): a
few set-based statements whatever the number of devices, no device locked row by row,
and every device pointed where it must be, once (one revision more each)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.store.models import Device
from tests.rollout_kit import GARBAGE, Fleet, run_healthy

N = 60


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def revisions(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        return dict(s.exec(select(Device.device_id, Device.desired_revision)).all())


def assert_set_based(seen: list[str]) -> None:
    # Before: a SELECT ... FOR UPDATE of every device, then an UPDATE per device and row.
    assert not [s for s in seen if s.startswith("select device.") and "for update" in s]
    assert len([s for s in seen if s.startswith("update device")]) <= 2, seen
    assert len([s for s in seen if s.startswith("update rollout_device")]) <= 3, seen
    assert len(seen) < 30, seen


def test_abort_at_fleet_size_is_a_few_statements(store: Engine) -> None:
    fleet = Fleet(store, N)
    ro = fleet.start(waves=["50%", "100%"], spread_label=None, max_devices_per_minute=10**6)
    sent = sorted(fleet.pending(ro))
    acked, unacked = sent[: len(sent) // 2], sent[len(sent) // 2:]
    for d in acked:
        fleet.ack(d)
    before = revisions(store)
    fleet.out.sent.clear()
    with statements(store) as seen:
        fleet.act(ro, "abort")
    assert_set_based(seen)
    after = revisions(store)
    assert {d for d in fleet.ids if after[d] != before[d]} == set(unacked)
    assert all(after[d] == before[d] + 1 for d in unacked)
    assert sorted(s.device_id for s in fleet.out.sent) == unacked  # each once, on its way back
    assert all(s.release_id == "r1" and s.rollback for s in fleet.out.sent)
    view = fleet.get(ro)
    states = {d.device_id: d.state for d in view.devices}
    assert {states[d] for d in acked} == {"acknowledged"}
    assert {states[d] for d in unacked} == {"rolled_back"}
    rest = set(fleet.ids) - set(sent)
    assert rest and {states[d] for d in rest} == {"cancelled"}
    assert {w.state for w in view.waves} == {"cancelled"}
    assert view.state == "aborted"
    assert fleet.audit("rollout.abort")[0].detail["reverted"] == len(unacked)


def test_gate_failure_rollback_resume_and_rollback_are_a_few_statements_each(
    store: Engine,
) -> None:
    fleet = Fleet(store, N)
    ro = fleet.start(waves=["100%"], max_devices_per_minute=10**6)
    assert len(fleet.pending(ro)) == N
    base = revisions(store)
    fleet.step(30)  # its windows arrive after the release went out
    with statements(store) as seen:
        run_healthy(fleet, ro, GARBAGE)  # the wave fails class_shift: rolled back
    view = fleet.get(ro)
    assert view.state == "paused" and view.waves[0].state == "rolled_back"
    assert {d.state for d in view.devices} == {"rolled_back"}
    assert revisions(store) == {d: r + 1 for d, r in base.items()}
    assert len([s for s in seen if s.startswith("update device ")]) <= 2

    with statements(store) as seen:
        fleet.act(ro, "resume")  # the wave goes out again, to every device
    assert_set_based(seen)
    assert set(fleet.pending(ro)) == set(fleet.ids)
    assert revisions(store) == {d: r + 2 for d, r in base.items()}

    fleet.out.sent.clear()
    with statements(store) as seen:
        fleet.act(ro, "rollback")
    assert_set_based(seen)
    assert revisions(store) == {d: r + 3 for d, r in base.items()}
    assert sorted(s.device_id for s in fleet.out.sent) == fleet.ids
    assert all(s.release_id == "r1" and s.rollback for s in fleet.out.sent)
    assert fleet.get(ro).state == "rolled_back"
    assert {fleet.desired(d) for d in fleet.ids} == {"r1"}
