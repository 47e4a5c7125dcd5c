"""Random event sequences against the rollout engine: every change of state is a table move.

Hypothesis drives a real SQLite store (``tests.rollout_kit.Fleet``) with device reports,
telemetry windows, devices going offline and back, clock steps, operator actions and
superseding rollouts. SQLAlchemy attribute events record every assignment to the
``state`` of a rollout, a wave or a device row, whoever makes it (and a set-based move's
``set_committed_value``). Each assignment must be
a move of that machine's table (``rollouts/states.py``) made through ``StateMachine.next``,
and every new row must start in the table's initial state.
"""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from control_plane.config.rollout_policy import GatePolicy
from control_plane.errors import ConflictError
from control_plane.rollouts import release
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.states import DEVICE, ROLLOUT, WAVE
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import Device, Rollout, RolloutDevice, RolloutWave
from control_plane.testing import reported_state
from protocols import Percentiles, ReleaseStatus, ShadowSummary
from protocols.states import StateMachine
from tests.rollout_kit import GOOD, Fleet

N = 5
MACHINES: dict[type, StateMachine[Any, Any]] = {
    Rollout: ROLLOUT, RolloutWave: WAVE, RolloutDevice: DEVICE,
}
Change = tuple[str, Any, str]  # machine, old state (a NO_VALUE symbol for a new row), new


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding what ``Fleet`` writes, copied for each example."""
    path = tmp_path_factory.mktemp("rollout-states") / "template.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(f"sqlite:///{path}")
    Fleet(engine, N)
    engine.dispose()
    return path


@pytest.fixture(scope="module")
def assignments() -> Iterator[list[Change]]:
    """Every assignment to a stateful row's ``state`` while the module runs."""
    seen: list[Change] = []

    def recorder(machine: StateMachine[Any, Any]) -> Callable[..., None]:
        def on_set(_target: object, value: str, old: object, _initiator: object) -> None:
            seen.append((machine.name, old, value))
        return on_set

    hooks = [(model.state, recorder(machine)) for model, machine in MACHINES.items()]
    for attribute, hook in hooks:
        event.listen(attribute, "set", hook, active_history=True)
    yield seen
    for attribute, hook in hooks:
        event.remove(attribute, "set", hook)


device = st.integers(0, N - 1)
# Healthy devices and operator actions are listed twice: a wave passes, and a paused
# rollout resumes, only when they come often enough.
HEALTHY = st.tuples(st.just("healthy"), st.just(0))
ACT = st.tuples(st.just("act"), st.tuples(
    st.sampled_from(["pause", "resume", "resume", "approve", "abort", "rollback"]),
    st.integers(0, 3)))  # which rollout: the first, or one that superseded it
EVENTS = st.lists(st.one_of(
    st.tuples(st.just("tick"), st.sampled_from([1, 5, 30, 61, 700])), HEALTHY, HEALTHY,
    st.tuples(st.sampled_from(["ack", "fail", "windows", "offline", "online"]), device),
    ACT, ACT,
    st.tuples(st.just("supersede"), st.lists(device, min_size=1, max_size=3, unique=True)),
), min_size=8, max_size=30)
POLICIES = st.fixed_dictionaries({
    "waves": st.sampled_from([["100%"], ["1", "100%"], ["1", "50%", "100%"]]),
    "shadow_phase": st.booleans(),
    "approval_after_wave": st.sampled_from([None, 1]),
    "on_gate_failure": st.sampled_from(["rollback", "pause"]),
    "max_devices_per_minute": st.sampled_from([None, 1]),
    "gates": st.builds(GatePolicy, ack_timeout_s=st.just(60.0),
                       offline_deadline_s=st.just(600.0), min_windows=st.sampled_from([0, 2]),
                       health_timeout_s=st.just(120.0)),
})


def _report(fleet: Fleet, device_id: str, stage: str) -> None:
    """The device reports its desired release at ``stage``, in the slot its mode uses."""
    with Session(fleet.engine) as s:
        row = s.get(Device, device_id)
        assert row is not None
        release, mode, revision = row.desired_release_id, row.desired_mode, row.desired_revision
    if release is None:
        return
    state = reported_state(device_id, "r1" if mode == "shadow" else release, revision=revision)
    if mode == "shadow":
        status = ReleaseStatus(release_id=release, model_version="2", stage=stage,  # type: ignore[arg-type]
                               since=fleet.now)
        state = state.model_copy(update={"shadow": status})
    elif state.active is not None:
        state = state.model_copy(update={"active": state.active.model_copy(
            update={"stage": stage})})
    fleet.report(device_id, state)


def _online(fleet: Fleet, device_id: str, online: bool) -> None:
    with Session(fleet.engine) as s:
        row = s.get(Device, device_id)
        assert row is not None
        row.online, row.status_at = online, fleet.now
        s.add(row)
        s.commit()


def _apply(fleet: Fleet, rollout_ids: list[str], kind: str, arg: Any) -> None:
    ids = fleet.ids
    if kind == "tick":
        fleet.step(arg)
        for rollout_id in rollout_ids:
            fleet.tick(rollout_id)
    elif kind == "healthy":  # every device acknowledges what it was sent, with telemetry
        for i in range(len(ids)):
            _apply(fleet, rollout_ids, "ack", i)
            _apply(fleet, rollout_ids, "windows", i)
    elif kind in ("ack", "fail"):
        _report(fleet, ids[arg], "healthy" if kind == "ack" else "failed")
    elif kind == "windows":
        shadow = ShadowSummary(release_id="r2", frames_compared=100, agreements=95,
                               class_counts=GOOD, latency_ms=Percentiles(p50=5, p95=9, p99=11))
        fleet.windows(ids[arg], "r2", GOOD, shadow=shadow)
    elif kind in ("offline", "online"):
        _online(fleet, ids[arg], kind == "online")
    elif kind == "act":
        action, which = arg
        with contextlib.suppress(ConflictError):  # refused where the table does not allow it
            fleet.act(rollout_ids[min(which, len(rollout_ids) - 1)], action)
    else:
        with Session(fleet.engine, expire_on_commit=False) as s:
            started = rollouts.start_rollout(s, fleet.out, "r2", [ids[i] for i in arg],
                                             "active", who="carol", supersede=True)
        rollout_ids.append(started.rollout_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=POLICIES, events=EVENTS)
def test_random_events_make_only_table_moves(
    template: Path, assignments: list[Change], tmp_path_factory: pytest.TempPathFactory,
    policy: dict[str, Any], events: list[tuple[str, Any]],
) -> None:
    path = tmp_path_factory.mktemp("example") / "cp.db"
    shutil.copy(template, path)
    engine = create_db_engine(f"sqlite:///{path}")
    decided: list[Change] = []
    real_next = StateMachine.next

    def recording_next(machine: StateMachine[Any, Any], state: str, name: Any) -> Any:
        target = real_next(machine, state, name)
        decided.append((machine.name, state, target))
        return target

    def recording_mirror(row: Any, name: str, value: Any) -> None:
        # A set-based move (rollouts/release.py) writes rows with one UPDATE and gives the
        # objects in memory the new values this way, which fires no "set" event.
        if name == "state" and type(row) in MACHINES:
            assignments.append((MACHINES[type(row)].name, row.state, value))
        set_committed_value(row, name, value)

    assignments.clear()
    try:
        with mock.patch.object(StateMachine, "next", recording_next), \
                mock.patch.object(release, "set_committed_value", recording_mirror):
            fleet = Fleet(engine, N, seeded=True)
            rollout_ids = [fleet.start(**policy)]
            for kind, arg in events:
                _apply(fleet, rollout_ids, kind, arg)
    finally:
        engine.dispose()
    machines = {m.name: m for m in MACHINES.values()}
    created = [(name, new) for name, old, new in assignments if not isinstance(old, str)]
    assert all(new == machines[name].initial for name, new in created), created
    changed = Counter(c for c in assignments if isinstance(c[1], str))
    for name, old, new in changed:  # shown by --hypothesis-show-statistics
        note_event(f"{name}: {old} -> {new}")
    through_table = Counter(c for c in decided if c[0] in machines)
    assert changed == through_table, "a state was assigned without its table's move"
    assert created  # the rollout, its waves and its rows were made
