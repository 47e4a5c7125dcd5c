"""One writer of a device's desired state at a time, on SQLite and PostgreSQL.

Rollout ticks and operator actions (``start --supersede``, abort, rollback) run at once
from threads and from another process, each with its own engine, like the API's
workers and the rollout runner. Every desired state any of them publishes is written
down; the invariant: a revision names one desired state only, revisions only grow, and
the store holds the newest one published; and a device's revisions are published in
order, so the retained message an offline device gets is never an older one.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from control_plane.config.rollout_policy import RolloutPolicy
from control_plane.errors import ConflictError
from control_plane.rollouts import service as rollouts
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import Device, Rollout
from protocols import DesiredState
from tests.rollout_kit import GATES, Fleet

POLICY = RolloutPolicy(waves=["100%"], max_devices_per_minute=None, spread_label=None,
                       gates=GATES)
ROUNDS = 12


class FileRecorder:
    """Writes each published state as a JSON line (a process's share of the record)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def publish_desired(self, state: DesiredState) -> None:
        # CLOCK_MONOTONIC is one clock for every process: the records sort into the order
        # the publishes were made in, which is the order a broker would retain them in.
        line = json.dumps({"at": time.monotonic_ns(), "device": state.device_id,
                           "revision": state.revision,
                           "release": state.release_id, "mode": state.mode,
                           "rollout": state.rollout_id})
        with self._lock, self.path.open("a") as fh:
            fh.write(line + "\n")


def hammer(url: str, out: str, seed: int, rounds: int = ROUNDS) -> None:
    """Ticks and operator actions in a random order, as one API worker would make them."""
    engine = create_db_engine(url)
    publisher = FileRecorder(Path(out))
    rng = random.Random(seed)
    try:
        for _ in range(rounds):
            with Session(engine, expire_on_commit=False) as s:
                op = rng.choice(["tick", "tick", "start", "abort", "rollback", "republish"])
                try:
                    if op == "tick":
                        rollouts.tick_all(s, publisher)
                    elif op == "republish":  # what a reconnect to the broker does
                        rollouts.republish_desired(s, publisher)
                    elif op == "start":
                        rollouts.start_rollout(s, publisher, rng.choice(["r1", "r2"]), None,
                                               "active", who=f"w{seed}", policy=POLICY,
                                               supersede=True)
                    else:
                        ids = s.exec(select(Rollout.rollout_id)
                                     .order_by(col(Rollout.created_at).desc()).limit(3)).all()
                        if ids:
                            rollouts.act(s, publisher, rng.choice(ids), op,  # type: ignore[arg-type]
                                         who=f"w{seed}")
                except ConflictError:
                    s.rollback()  # the action does not apply to that rollout's state now
    finally:
        engine.dispose()


def records(folder: Path) -> list[dict[str, object]]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


@pytest.fixture
def store(database_url: str) -> Iterator[str]:
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        Fleet(engine, 6)
    finally:
        engine.dispose()
    yield database_url


def test_ticks_and_operator_actions_from_threads_and_a_process_never_share_a_revision(
    store: str, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    process = ctx.Process(target=hammer, args=(store, str(tmp_path / "p.jsonl"), 100))
    process.start()
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            hammer(store, str(tmp_path / f"t{seed}.jsonl"), seed)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    process.join(timeout=240)
    assert not errors, errors
    assert process.exitcode == 0

    published = records(tmp_path)
    assert len(published) > 20  # the hammers did write
    by_revision: dict[tuple[object, object], set[tuple[object, object]]] = defaultdict(set)
    for r in published:
        by_revision[(r["device"], r["revision"])].add((r["release"], r["mode"]))
    shared = {k: v for k, v in by_revision.items() if len(v) > 1}
    assert not shared, f"one revision, several desired states: {shared}"
    last: dict[object, int] = {}
    for r in sorted(published, key=lambda r: int(str(r["at"]))):
        revision = int(str(r["revision"]))
        assert revision >= last.get(r["device"], 0), f"{r} published after revision " \
            f"{last[r['device']]}: the broker would retain the older one"
        last[r["device"]] = revision
    engine = create_db_engine(store)
    try:
        with Session(engine) as s:
            held = {d.device_id: d for d in s.exec(select(Device)).all()}
    finally:
        engine.dispose()
    for device_id, device in held.items():
        newest = max(int(str(r["revision"])) for r in published if r["device"] == device_id)
        assert device.desired_revision == newest, device_id
        final = next(r for r in published
                     if r["device"] == device_id and r["revision"] == newest)
        assert final["release"] == device.desired_release_id, device_id
