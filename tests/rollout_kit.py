"""A rollout store driven by hand: releases r1 (everywhere, with baseline telemetry) and r2,
devices whose reports and windows the test writes, and a stepped clock for the engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from control_plane.config.rollout_policy import GatePolicy, RolloutPolicy
from control_plane.rollouts import desired
from control_plane.rollouts import engine as rollout_engine
from control_plane.rollouts import service as rollouts
from control_plane.rollouts.reported import record_reports
from control_plane.store.db import create_db_engine, upgrade
from control_plane.store.models import (
    AuditEntry,
    Device,
    Model,
    ModelVersion,
    Release,
    TelemetryWindowRecord,
)
from control_plane.testing import reported_state, telemetry_window
from protocols import DesiredState, ReportedState, ShadowSummary

GOOD = {"dog": 55, "cat": 45}
GARBAGE = {"dog": 100}
GATES = GatePolicy(ack_timeout_s=60, offline_deadline_s=600, min_windows=2,
                   health_timeout_s=120)


class Recorder:
    def __init__(self) -> None:
        self.sent: list[DesiredState] = []

    def publish_desired(self, state: DesiredState) -> None:
        self.sent.append(state)

    def releases_of(self, device_id: str) -> list[str | None]:
        return [s.release_id for s in self.sent if s.device_id == device_id]


class Fleet:
    """A store with releases r1 (running everywhere, with baseline telemetry) and r2."""

    def __init__(self, engine: Engine, n: int, *, seeded: bool = False) -> None:
        """``seeded``: the store already holds what a Fleet of ``n`` writes (a copy)."""
        self.engine = engine
        self.now = datetime.now(UTC)
        self.seq = 0
        self.out = Recorder()
        self.ids = [f"cam-{i:02d}" for i in range(n)]
        if seeded:
            self.seq = 3 * n
            return
        with Session(engine) as s:
            s.add(Model(id=1, name="petnet"))
            s.add(ModelVersion(id=1, model_id=1, number=1, version="1", primary_sha256="0" * 64,
                               spec={}, created_by="t"))
            for rel in ("r1", "r2"):
                s.add(Release(release_id=rel, model_version_id=1, model_name="petnet",
                              model_version="1", key_id="k", primary_sha256="0" * 64,
                              manifest={}, created_by="t"))
            for i, d in enumerate(self.ids):
                s.add(Device(device_id=d, labels={"park": f"p{i % 3}"}, online=True,
                             status_at=self.now, desired_release_id="r1", desired_revision=1,
                             reported=reported_state(d, "r1").model_dump(mode="json")))
            s.commit()
        for d in self.ids:
            self.windows(d, "r1", GOOD, 3)
        self.step(1)

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def windows(self, device_id: str, release: str, counts: dict[str, int], n: int = 2,
                shadow: ShadowSummary | None = None) -> None:
        with Session(self.engine) as s:
            for _ in range(n):
                self.seq += 1
                w = telemetry_window(device_id, self.seq, release, class_counts=counts,
                                     shadow=shadow)
                s.add(TelemetryWindowRecord(
                    device_id=device_id, seq=w.seq, window_start=w.window_start,
                    window_end=w.window_end, release_id=release, received_at=self.now,
                    payload=w.model_dump(mode="json", by_alias=True)))
            s.commit()

    def report(self, device_id: str, state: ReportedState) -> str | None:
        with Session(self.engine) as s:
            device = s.get(Device, device_id)
            assert device is not None
            # Stamped with the kit's clock: windows are, and a wall clock running ahead of
            # it (a loaded machine) put acknowledgements after the windows they gate on.
            result = record_reports(s, [(device, state)], self.now).get(device_id)
            s.commit()
            return result

    def ack(self, device_id: str, release: str = "r2") -> None:
        with Session(self.engine) as s:
            revision = s.get(Device, device_id).desired_revision  # type: ignore[union-attr]
        assert self.report(device_id, reported_state(device_id, release, revision=revision)) \
            == "acknowledged"

    def start(self, mode: str = "active", ids: list[str] | None = None, **policy: Any) -> str:
        with Session(self.engine, expire_on_commit=False) as s:
            ro = rollouts.start_rollout(
                s, self.out, "r2", ids or self.ids, mode,  # type: ignore[arg-type]
                who="alice", policy=RolloutPolicy(**{"gates": GATES, **policy}))
        # The first wave is released at the wall clock: on a loaded machine setting up
        # the store can take longer than the kit's clock moved, and windows stamped
        # before the release would not count for it.
        self.now = max(self.now, datetime.now(UTC))
        return ro.rollout_id

    def tick(self, rollout_id: str) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            sent = rollout_engine.tick(s, rollout_id, self.now)
            s.commit()
            desired.publish(s, self.out, sent)

    def periodic_tick(self, rollout_id: str) -> bool:
        """The rollout engine's periodic tick (``service.advance``) at the kit's clock;
        whether it stopped at the first look (the rollout only waits for reports)."""
        with Session(self.engine, expire_on_commit=False) as s:
            if rollout_engine.tick_if_waiting(s, rollout_id, self.now):
                return True
        self.tick(rollout_id)
        return False

    def act(self, rollout_id: str, action: str, who: str = "bob") -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            rollouts.act(s, self.out, rollout_id, action, who=who)  # type: ignore[arg-type]

    def get(self, rollout_id: str) -> Any:
        with Session(self.engine) as s:
            return rollouts.get_rollout(s, rollout_id)

    def pending(self, rollout_id: str) -> list[str]:
        return [d.device_id for d in self.get(rollout_id).devices if d.state == "pending"]

    def go_offline(self, device_id: str) -> None:
        with Session(self.engine) as s:
            device = s.get(Device, device_id)
            assert device is not None
            device.online = False
            s.add(device)
            s.commit()

    def desired(self, device_id: str) -> str | None:
        with Session(self.engine) as s:
            return s.get(Device, device_id).desired_release_id  # type: ignore[union-attr]

    def audit(self, action: str) -> list[AuditEntry]:
        with Session(self.engine) as s:
            return list(s.exec(select(AuditEntry).where(AuditEntry.action == action)).all())


@contextmanager
def sqlite_fleet(folder: Path, devices: int) -> Iterator[Fleet]:
    """A fleet of ``devices`` on a migrated SQLite store in ``folder``."""
    url = f"sqlite:///{folder / 'cp.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    try:
        yield Fleet(engine, devices)
    finally:
        engine.dispose()


def run_healthy(fleet: Fleet, rollout_id: str, counts: dict[str, int] = GOOD) -> None:
    """Online devices that got the release acknowledge and send windows; then one tick."""
    with Session(fleet.engine) as s:
        offline = set(s.exec(select(Device.device_id).where(Device.online == False)).all())  # noqa: E712
    for d in sorted(set(fleet.pending(rollout_id)) - offline):
        fleet.ack(d)
        fleet.windows(d, "r2", counts)
    fleet.step(5)
    fleet.tick(rollout_id)
