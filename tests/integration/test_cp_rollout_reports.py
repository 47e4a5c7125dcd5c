"""Reported states into rollout rows, a batch at a time, on a real store (SQLite and
PostgreSQL): a few statements per batch whatever its size, ordered by the control plane's
receipt, never by the agent's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.rollouts import service as rollouts
from control_plane.services import devices
from control_plane.store.db import session_scope
from control_plane.store.models import Device, RolloutDevice
from control_plane.testing import reported_state
from protocols import ReportedState
from tests.rollout_kit import GATES, Fleet

N = 60


def started(engine: Engine) -> tuple[Fleet, str]:
    fleet = Fleet(engine, N)
    ro = fleet.start(waves=["100%"], max_devices_per_minute=1_000_000,
                     gates=GATES.model_copy(update={"min_windows": 0}))
    fleet.tick(ro)
    return fleet, ro


def revision(engine: Engine, device_id: str) -> int:
    with Session(engine) as s:
        device = s.get(Device, device_id)
        assert device is not None
        return device.desired_revision


def ingest(engine: Engine, reports: list[ReportedState]) -> dict[str, str]:
    """What ingest does with one run of reported states."""
    with session_scope(engine) as s:
        applied, _ = devices.apply_reported_many(s, reports)
        return rollouts.on_reported_many(s, applied)


def row_states(engine: Engine, rollout_id: str) -> dict[str, str]:
    with Session(engine) as s:
        rows = s.exec(select(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id))
        return {r.device_id: r.state for r in rows}


def test_a_batch_of_reports_moves_its_rows_in_one_statement(store: Engine) -> None:
    fleet, ro = started(store)
    assert set(row_states(store, ro).values()) == {"pending"}
    reports = [reported_state(d, "r2", revision=revision(store, d)) for d in fleet.ids]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    sa.event.listen(store, "before_cursor_execute", seen)
    try:
        moved = ingest(store, reports)
    finally:
        sa.event.remove(store, "before_cursor_execute", seen)
    assert moved == dict.fromkeys(fleet.ids, "acknowledged")
    assert set(row_states(store, ro).values()) == {"acknowledged"}
    updates = [s for s in statements if s.startswith("update rollout_device")]
    assert len(updates) == 1, updates  # not one per device
    fleet.tick(ro)
    assert fleet.get(ro).state == "completed"


@pytest.mark.parametrize("skew", [timedelta(minutes=10), timedelta(minutes=-70)])
def test_reports_are_ordered_by_receipt_not_by_the_agents_clock(
    store: Engine, skew: timedelta
) -> None:
    """An agent 10 minutes fast, or 70 minutes slow (its clock stepped back after its last
    report): its newest report counts; a redelivered report about an older desired
    revision changes nothing, and reaches neither the device nor the rollout."""
    fleet, ro = started(store)
    cam = fleet.ids[0]
    rev = revision(store, cam)
    ahead = datetime.now(UTC) + timedelta(hours=2)  # what the agent sent before its step
    ingest(store, [reported_state(cam, "r1", revision=rev - 1).model_copy(
        update={"updated_at": ahead})])
    now_on_agent = datetime.now(UTC) + skew
    ack = reported_state(cam, "r2", revision=rev).model_copy(update={"updated_at": now_on_agent})
    assert ingest(store, [ack]) == {cam: "acknowledged"}
    with Session(store) as s:
        device = s.get(Device, cam)
        assert device is not None and device.reported is not None
        assert device.reported["active"]["release_id"] == "r2"
        assert device.reported_at is not None
        assert abs(device.reported_at - datetime.now(UTC)) < timedelta(minutes=5)
    failed_old = reported_state(cam, "r2", revision=rev - 1, stage="failed")
    assert ingest(store, [failed_old]) == {}
    assert row_states(store, ro)[cam] == "acknowledged"


def test_a_tick_while_the_wave_waits_reads_no_rows_and_locks_no_device(store: Engine) -> None:
    """While online devices are still to report and no deadline is near, a tick is a few
    queries, two of them aggregates: no row or device is read one by one, no device is
    locked, and the wave's ack gate still shows the current counts. Then the full tick
    runs again."""
    fleet, ro = started(store)
    half = fleet.ids[: N // 2]
    ingest(store, [reported_state(d, "r2", revision=revision(store, d)) for d in half])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    sa.event.listen(store, "before_cursor_execute", seen)
    try:
        fleet.tick(ro)
    finally:
        sa.event.remove(store, "before_cursor_execute", seen)
    # The rollout's row is locked as every tick locks it; no device row is.
    assert not [s for s in statements if s.startswith("select device.") and "for update" in s]
    assert not [s for s in statements if s.startswith("select rollout_device.id")]
    assert len(statements) < 10, statements
    gate = fleet.get(ro).waves[0].gates[0]
    assert (gate.name, gate.status) == ("ack", "wait")
    assert gate.detail.startswith(f"{N // 2}/{N} acknowledged")
    rest = fleet.ids[N // 2:]
    ingest(store, [reported_state(d, "r2", revision=revision(store, d)) for d in rest])
    fleet.tick(ro)
    assert fleet.get(ro).state == "completed"


def test_the_periodic_tick_counts_before_it_takes_the_writers_lock(store: Engine) -> None:
    """On SQLite the writers' lock is the database's one write lock, which ingest needs for
    each run of reported states: a periodic tick that finds the wave waiting runs its
    aggregates first and takes the lock only to write the gate's counts."""
    fleet, ro = started(store)
    first, rest = fleet.ids[:N // 3], fleet.ids[N // 3:]
    ingest(store, [reported_state(d, "r2", revision=revision(store, d)) for d in first])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    sa.event.listen(store, "before_cursor_execute", seen)
    try:
        with Session(store, expire_on_commit=False) as s:
            assert rollouts.advance(s, fleet.out, ro) == 0
    finally:
        sa.event.remove(store, "before_cursor_execute", seen)
    locked = [i for i, s in enumerate(statements)
              if s == "begin immediate" or "pg_advisory_xact_lock" in s]
    counted = [i for i, s in enumerate(statements) if "count(" in s]
    assert locked and counted and locked[0] > max(counted), statements
    assert len(statements) - locked[0] <= 4, statements[locked[0]:]  # lock, rollout, wave, gate
    gate = fleet.get(ro).waves[0].gates[0]
    assert (gate.name, gate.status) == ("ack", "wait")
    assert gate.detail.startswith(f"{N // 3}/{N} acknowledged")
    ingest(store, [reported_state(d, "r2", revision=revision(store, d)) for d in rest])
    with Session(store, expire_on_commit=False) as s:
        rollouts.advance(s, fleet.out, ro)  # every device reported: the full tick completes it
    assert fleet.get(ro).state == "completed"
