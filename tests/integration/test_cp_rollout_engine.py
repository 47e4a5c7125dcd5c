"""The rollout engine on a real SQLite store, driven tick by tick with a stepped clock.

Devices here are rows the test moves by hand (reported states through the same
``on_reported`` the MQTT adapter calls, telemetry windows as ingest stores them), so
every wave, gate, deadline and operator action is checked without waiting on a clock.
``test_cp_rollout_mqtt.py`` runs the same engine with a real broker and process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import pytest
from sqlmodel import Session, select

from control_plane.config.rollout_policy import RolloutPolicy
from control_plane.errors import ConflictError
from control_plane.rollouts import service as rollouts
from control_plane.store.models import (
    Rollout,
    RolloutDevice,
)
from control_plane.testing import reported_state
from protocols import Percentiles, ReleaseStatus, ShadowSummary
from tests.rollout_kit import GARBAGE, GATES, GOOD, Fleet, Recorder, run_healthy, sqlite_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with sqlite_fleet(tmp_path, 10) as fleet:
        yield fleet


def test_good_release_goes_fleet_wide_wave_by_wave(fleet: Fleet) -> None:
    ro = fleet.start()
    view = fleet.get(ro)
    assert [w.device_count for w in view.waves] == [1, 4, 5]  # 1, 10% (=1), 50%, 100% of 10
    assert len(fleet.out.sent) == 1  # only the canary hears of r2
    canary = fleet.out.sent[0].device_id
    for expected_sent in (5, 10, 10):
        run_healthy(fleet, ro)
        assert len({s.device_id for s in fleet.out.sent}) == expected_sent
    view = fleet.get(ro)
    assert view.state == "completed"
    assert all(d.state == "acknowledged" for d in view.devices)
    assert [w.state for w in view.waves] == ["passed"] * 3
    gates = {g.name: g.status for g in view.waves[0].gates}
    assert gates == {"ack": "pass", "telemetry": "pass", "error_rate": "pass",
                     "latency_p95": "pass", "class_shift": "pass"}
    assert fleet.desired(canary) == "r2"
    # The canary wave spread: its one device; wave 2 took the other parks first.
    assert {d.wave for d in view.devices if d.device_id == canary} == {1}


def test_garbage_release_is_stopped_in_the_canary_and_rolled_back(fleet: Fleet) -> None:
    ro = fleet.start()
    canary = fleet.out.sent[0].device_id
    run_healthy(fleet, ro, GARBAGE)
    view = fleet.get(ro)
    assert view.state == "paused" and "class_shift" in (view.paused_reason or "")
    assert view.waves[0].state == "rolled_back"
    shift = next(g for g in view.waves[0].gates if g.name == "class_shift")
    assert shift.status == "fail" and "PSI" in shift.detail
    assert fleet.out.releases_of(canary) == ["r2", "r1"]  # reverted automatically
    assert fleet.desired(canary) == "r1"
    others = [d for d in fleet.ids if d != canary]
    assert all(fleet.out.releases_of(d) == [] for d in others)  # never received it
    assert all(fleet.desired(d) == "r1" for d in others)
    entry = fleet.audit("rollout.gate_failed")[0]
    assert entry.who == "rollout-engine" and entry.detail["wave"] == 1
    fleet.tick(ro)  # paused: nothing moves
    assert len(fleet.out.sent) == 2

    fleet.act(ro, "resume")  # retry the wave: it goes out again
    assert fleet.out.releases_of(canary) == ["r2", "r1", "r2"]
    fleet.act(ro, "rollback")
    assert fleet.get(ro).state == "rolled_back" and fleet.desired(canary) == "r1"
    assert [e.who for e in fleet.audit("rollout.rollback")] == ["bob"]


def test_failure_policy_pause_keeps_the_wave(fleet: Fleet) -> None:
    ro = fleet.start(on_gate_failure="pause")
    canary = fleet.out.sent[0].device_id
    assert fleet.report(canary, reported_state(canary, "r2", "rolled_back", revision=2)) \
        == "failed"
    fleet.tick(ro)
    view = fleet.get(ro)
    assert view.state == "paused" and view.waves[0].state == "failed"
    assert fleet.desired(canary) == "r2"  # not reverted by policy


def test_ack_timeout_fails_the_wave(fleet: Fleet) -> None:
    ro = fleet.start()
    fleet.step(61)
    fleet.tick(ro)
    view = fleet.get(ro)
    assert view.state == "paused" and "ack" in (view.paused_reason or "")
    failed = [d for d in view.devices if d.state == "failed"]
    assert len(failed) == 1 and "no acknowledgement within 60s" in (failed[0].detail or "")


def test_offline_device_is_pending_then_catches_up(fleet: Fleet) -> None:
    fleet.go_offline("cam-03")
    ro = fleet.start(waves=["100%"])
    run_healthy(fleet, ro)  # the others; cam-03 cannot answer
    view = fleet.get(ro)
    assert view.state == "in_progress" and view.waves[0].state == "passed"
    assert fleet.pending(ro) == ["cam-03"]
    assert "1 offline pending" in view.waves[0].gates[0].detail
    fleet.step(300)  # back before the deadline: it gets the retained state and acks
    fleet.ack("cam-03")
    fleet.tick(ro)
    assert fleet.get(ro).state == "completed"


def test_acknowledgements_are_stamped_with_the_fleets_clock(fleet: Fleet) -> None:
    """The kit's clock is simulated: the windows and the acknowledgements that the gates
    compare must both follow it, however far the wall clock has moved."""
    ro = fleet.start(waves=["100%"])
    fleet.step(3600)
    fleet.ack("cam-00")
    with Session(fleet.engine) as s:
        row = s.exec(select(RolloutDevice).where(RolloutDevice.rollout_id == ro,
                                                 RolloutDevice.device_id == "cam-00")).one()
    assert row.acked_at is not None
    assert row.acked_at.replace(tzinfo=UTC) == fleet.now


def test_offline_device_expires_at_the_deadline(fleet: Fleet) -> None:
    fleet.go_offline("cam-00")
    ro = fleet.start(waves=["100%"])
    run_healthy(fleet, ro)
    fleet.step(601)
    fleet.tick(ro)
    view = fleet.get(ro)
    assert view.state == "completed"
    assert next(d for d in view.devices if d.device_id == "cam-00").state == "expired"


def test_approval_is_required_beyond_the_configured_wave(fleet: Fleet) -> None:
    ro = fleet.start(approval_after_wave=1)
    run_healthy(fleet, ro)
    view = fleet.get(ro)
    assert view.state == "awaiting_approval" and len(fleet.out.sent) == 1
    fleet.act(ro, "approve", who="carol")
    view = fleet.get(ro)
    assert view.state == "in_progress" and len(fleet.out.sent) == 5
    assert view.waves[1].approved_by == "carol" and view.waves[1].approved_at is not None
    entry = fleet.audit("rollout.approve")[0]
    assert (entry.who, entry.detail["wave"]) == ("carol", 2)
    with pytest.raises(ConflictError, match="awaiting_approval"):
        fleet.act(ro, "approve")


def test_one_active_rollout_per_device(fleet: Fleet) -> None:
    first = fleet.start()
    with pytest.raises(ConflictError, match="--supersede"):
        fleet.start(ids=["cam-01"])
    with Session(fleet.engine, expire_on_commit=False) as s:
        taken = rollouts.start_rollout(s, fleet.out, "r2", fleet.ids, "active", who="dan",
                                       policy=RolloutPolicy(gates=GATES), supersede=True)
    assert fleet.get(first).state == "superseded"
    assert fleet.get(taken.rollout_id).state == "in_progress"
    fleet.act(taken.rollout_id, "abort")
    view = fleet.get(taken.rollout_id)
    assert view.state == "aborted"
    assert sum(d.state == "cancelled" for d in view.devices) == 9
    fleet.start(ids=["cam-05"])  # an aborted rollout holds no device


def test_shadow_phase_before_serving(fleet: Fleet) -> None:
    ro = fleet.start(shadow_phase=True)
    first = fleet.out.sent[0]
    assert (first.mode, first.release_id, first.fallback_release_id) == ("shadow", "r2", "r1")
    canary = first.device_id
    status = ReleaseStatus(release_id="r2", model_version="2", stage="healthy",
                           since=fleet.now)
    shadow_report = reported_state(canary, "r1", revision=2).model_copy(
        update={"shadow": status})
    assert fleet.report(canary, shadow_report) == "acknowledged"
    summary = ShadowSummary(release_id="r2", frames_compared=100, agreements=96,
                            class_counts={"dog": 52, "cat": 48},
                            latency_ms=Percentiles(p50=5, p95=9, p99=11))
    fleet.windows(canary, "r1", GOOD, shadow=summary)
    fleet.step(5)
    fleet.tick(ro)
    view = fleet.get(ro)
    assert [w.state for w in view.waves[:2]] == ["passed", "running"]
    assert {g.name for g in view.waves[0].gates} >= {"agreement", "class_shift"}
    last = fleet.out.sent[-1]
    assert (last.device_id, last.mode, last.release_id) == (canary, "active", "r2")


def test_shadow_fraction_of_the_policy_reaches_the_shadowing_device(fleet: Fleet) -> None:
    fleet.start(shadow_phase=True, shadow_fraction=0.8)
    first = fleet.out.sent[0]
    assert (first.mode, first.settings.shadow_fraction) == ("shadow", 0.8)
    republished = Recorder()
    with Session(fleet.engine) as s:  # a re-publish (broker restart) says the same
        rollouts.republish_desired(s, republished)
    again = {d.device_id: d for d in republished.sent}
    assert again[first.device_id].settings.shadow_fraction == 0.8
    assert all(d.settings.shadow_fraction == 0.25 for d in again.values() if d.mode == "active")


def test_shadow_phase_with_low_agreement_is_stopped(fleet: Fleet) -> None:
    ro = fleet.start(shadow_phase=True)
    canary = fleet.out.sent[0].device_id
    status = ReleaseStatus(release_id="r2", model_version="2", stage="warmed", since=fleet.now)
    fleet.report(canary, reported_state(canary, "r1", revision=2).model_copy(
        update={"shadow": status}))
    summary = ShadowSummary(release_id="r2", frames_compared=100, agreements=20,
                            class_counts={"dog": 100})
    fleet.windows(canary, "r1", GOOD, shadow=summary)
    fleet.tick(ro)
    view = fleet.get(ro)
    assert view.state == "paused" and view.waves[0].state == "rolled_back"
    assert fleet.out.sent[-1].mode == "active" and fleet.out.sent[-1].release_id == "r1"


def test_rows_from_before_waves_still_read(fleet: Fleet) -> None:
    ro = fleet.start(waves=["100%"])
    with Session(fleet.engine) as s:
        row = s.get(Rollout, ro)
        assert row is not None
        row.policy = None  # as a rollout stored before migration 0004
        s.add(row)
        s.commit()
    assert fleet.get(ro).policy.gates.min_windows == 0


def test_planning_reads_three_columns_of_each_device(fleet: Fleet) -> None:
    """Planning needs a device's id, whether it is online and its labels: its reported
    state (about a kilobyte of JSON a device) is not read, nor are whole devices loaded."""
    import sqlalchemy as sa

    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()).lower())

    sa.event.listen(fleet.engine, "before_cursor_execute", seen)
    try:
        with Session(fleet.engine, expire_on_commit=False) as s:
            ro = rollouts.plan_rollout(s, "r2", None, "active", who="bob",
                                       policy=RolloutPolicy(gates=GATES))
    finally:
        sa.event.remove(fleet.engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.startswith("select") and "from device " in s + " "]
    assert reads and not [s for s in reads if "device.reported" in s], reads
    view = fleet.get(ro.rollout_id)
    assert sum(w.device_count for w in view.waves) == 10


@contextmanager
def row_reads(fleet: Fleet) -> Iterator[list[str]]:
    """What the block read row by row: one entry per rollout row loaded as an object and
    per statement reading devices' reported states (the full tick's two per-device reads)."""
    import sqlalchemy as sa

    reads: list[str] = []

    def loaded(row: RolloutDevice, _context: object) -> None:
        reads.append(f"rollout row {row.device_id}")

    def statement(_conn: object, _cursor: object, text: str, *_args: object) -> None:
        if "device.reported" in text.lower():
            reads.append(" ".join(text.split())[:120])

    sa.event.listen(RolloutDevice, "load", loaded)
    sa.event.listen(fleet.engine, "before_cursor_execute", statement)
    try:
        yield reads
    finally:
        sa.event.remove(RolloutDevice, "load", loaded)
        sa.event.remove(fleet.engine, "before_cursor_execute", statement)


def test_every_device_offline_ticks_without_reading_rows(fleet: Fleet) -> None:
    """A wave whose devices are all offline waits for their deadline or their return: a
    tick until then reads no row (at 10,000 devices the full pass reads them all)."""
    for device_id in fleet.ids:
        fleet.go_offline(device_id)
    ro = fleet.start(waves=["100%"])
    assert len(fleet.pending(ro)) == 10
    fleet.step(5)
    with row_reads(fleet) as reads:
        assert fleet.periodic_tick(ro)
        fleet.step(5)
        assert fleet.periodic_tick(ro)
    assert reads == []
    gate = fleet.get(ro).waves[0].gates[0]
    assert gate.status == "wait" and "every device is offline" in gate.detail
    fleet.step(601)  # past the offline deadline: the full tick expires them
    assert not fleet.periodic_tick(ro)
    view = fleet.get(ro)
    assert {d.state for d in view.devices} == {"expired"}, view.devices


def test_last_wave_passed_with_offline_devices_ticks_without_reading_rows(
    fleet: Fleet,
) -> None:
    """The last wave passed, one offline device still pending: nothing moves until it
    reports or its deadline, so a tick reads no row; its report completes the rollout."""
    fleet.go_offline("cam-03")
    ro = fleet.start(waves=["100%"])
    run_healthy(fleet, ro)
    assert fleet.get(ro).waves[0].state == "passed" and fleet.pending(ro) == ["cam-03"]
    fleet.step(5)
    with row_reads(fleet) as reads:
        assert fleet.periodic_tick(ro)
        fleet.step(200)
        assert fleet.periodic_tick(ro)
    assert reads == []
    assert fleet.get(ro).state == "in_progress"
    fleet.ack("cam-03")
    assert not fleet.periodic_tick(ro)
    assert fleet.get(ro).state == "completed"


def test_last_wave_passed_offline_device_expires_at_its_deadline(fleet: Fleet) -> None:
    fleet.go_offline("cam-03")
    ro = fleet.start(waves=["10%", "100%"])
    while fleet.get(ro).waves[-1].state != "passed":
        run_healthy(fleet, ro)
    fleet.step(5)
    assert fleet.periodic_tick(ro)
    fleet.step(601)
    assert not fleet.periodic_tick(ro)
    view = fleet.get(ro)
    assert view.state == "completed"
    assert next(d for d in view.devices if d.device_id == "cam-03").state == "expired"
