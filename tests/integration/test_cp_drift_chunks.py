"""A fleet analysed a chunk of devices at a time, in a real store (SQLite file and
PostgreSQL): each chunk's latest windows, baselines and learning are read for that chunk
only (a fleet's latest windows at once were most of a 10,000-device report's memory), and
the reports it writes are the ones the straightforward computation (``drift.oracle``:
every window through the ORM's types, the whole release at once) gives. Expected values
come from the oracle, never hard-coded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session, col, select

from control_plane.config.drift import DriftSettings
from control_plane.drift import (
    analyser,
    baseline,
    collect,
    device_windows,
    learning,
    oracle,
    recent,
    synthetic,
)
from control_plane.drift.collect import Collected
from control_plane.services.telemetry import ingest_windows
from control_plane.store.models import Device, DriftBaseline, DriftReport
from protocols import TelemetryWindow
from tests.rollup_kit import PROFILES, assert_same_reports, profiled_store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RANGE = 120
DEVICES = [f"cam-{d}" for d in range(8)]
CHUNK = 3
SETTINGS = DriftSettings(range_minutes=RANGE, analysis_interval_s=0, alert_windows=4,
                         alert_drifted_windows=2, min_samples=30, baseline_windows=40,
                         baseline_block=2)


def windows(d: int, device: str) -> list[dict[str, Any]]:
    """A device's windows, one a minute: cam-6 and cam-7 move to rel-b halfway, cam-2 and
    cam-5 change in their last minutes (after their baselines are learned)."""
    out = []
    for seq in range(RANGE - 5):
        rel = "rel-b" if d >= 6 and seq >= RANGE // 2 else "rel-a"
        shift = 2.0 if d in (2, 5) and seq >= RANGE - 12 else 0.0
        rng = np.random.default_rng(1000 * d + seq)
        out.append(synthetic.window(
            PROFILES[rel], device, seq, rng=rng, release_id=rel, shift=shift, frames=60,
            start=NOW - timedelta(minutes=RANGE - 4 - seq),
            condition="night" if d == 4 else None))
    return out


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    devices = [  # all but cam-3 healthy: they learn baselines
        Device(device_id=device, labels={}, reported={"active": {
            "release_id": "rel-b" if d >= 6 else "rel-a",
            "stage": "activating" if d == 3 else "healthy"}})
        for d, device in enumerate(DEVICES)]
    with profiled_store(database_url, devices) as s:
        fleet = [windows(d, device) for d, device in enumerate(DEVICES)]
        for minute in zip(*fleet, strict=True):  # each minute's windows received as it ends
            batch = [TelemetryWindow.model_validate(w) for w in minute]
            ingest_windows(s, batch, received_at=batch[0].window_end)
        s.commit()
        yield s


def written(session: Session, after: int) -> list[DriftReport]:
    return list(session.exec(select(DriftReport).where(col(DriftReport.id) > after)
                             .order_by(col(DriftReport.id))).all())


def test_a_fleet_in_chunks_writes_the_straightforward_reports(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analyser, "CHUNK_DEVICES", CHUNK)
    found: list[Collected] = []
    holding: list[int] = []
    real_collect, real_compare = analyser.collect, analyser.compare_many

    def spy_collect(*args: Any, **kwargs: Any) -> Collected:
        found.append(real_collect(*args, **kwargs))
        return found[-1]

    def spy_compare(*args: Any, **kwargs: Any) -> Any:
        holding.append(sum(1 for per_device in found[-1].devices.values()
                           for dev in per_device.values() if dev.recent))
        return real_compare(*args, **kwargs)

    monkeypatch.setattr(analyser, "collect", spy_collect)
    monkeypatch.setattr(analyser, "compare_many", spy_compare)
    first = analyser.run_analysis(session, SETTINGS, now=NOW)
    # Every healthy device learned its camera's baseline; cam-3 is not healthy yet.
    learned = session.exec(select(DriftBaseline.device_id)).all()
    assert first.baselines_learned == len(learned) == 7 and "cam-3" not in learned
    # rel-a's 8 devices in chunks of 3, rel-b's 2 in one: never more than a chunk's
    # latest windows held at once.
    assert holding == [3, 3, 2, 2] and max(holding) <= CHUNK

    expected = oracle.reports(session, SETTINGS, now=NOW)
    assert {r.release_id for r in expected} == {"rel-a", "rel-b"}
    states = {c["state"] for r in expected if r.device_id
              for c in r.statistics["baseline"]["cameras"]}
    assert states == {"active", "learning"}
    assert any(r.drifted for r in expected if r.device_id)  # cam-2 and cam-5 changed
    last = max(r.id or 0 for r in written(session, 0))
    second = analyser.run_analysis(session, SETTINGS, now=NOW)
    assert second.baselines_learned == 0
    assert_same_reports(written(session, last), expected)


def _relearnt(session: Session, factor: float) -> None:
    """Each active baseline replaced by a new version whose levels are ``factor`` times
    its own, as a reset and a new learning leave them."""
    for old in session.exec(select(DriftBaseline).where(col(DriftBaseline.retired_at).is_(None))
                            ).all():
        learning.reset(session, by="test", reason="relearn", device_id=old.device_id,
                       camera_id=old.camera_id, condition=old.condition,
                       release_id=old.release_id)
        session.add(DriftBaseline(**{
            **old.model_dump(exclude={"id", "retired_at", "retired_by", "retired_reason"}),
            "version": old.version + 1, "levels": _scaled(old.levels, factor)}))
    session.commit()


def _scaled(levels: dict[str, Any], factor: float) -> dict[str, Any]:
    return {k: {**v, "scale": v["scale"] * factor} for k, v in levels.items()}


def test_relearnt_baselines_are_judged_by_their_new_levels_not_the_kept_ones(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process keeps parsed levels between analyses: a row whose stored levels differ
    from the kept ones under the same id and version (another store, a restored backup)
    and a relearnt baseline (a new row) are judged by what the store holds."""
    monkeypatch.setattr(analyser, "CHUNK_DEVICES", CHUNK)
    analyser.run_analysis(session, SETTINGS, now=NOW)  # learns the baselines
    analyser.run_analysis(session, SETTINGS, now=NOW)  # reads them: their levels kept
    last = max(r.id or 0 for r in written(session, 0))
    analyser.run_analysis(session, SETTINGS, now=NOW)
    kept = {(r.release_id, r.device_id): r.statistics for r in written(session, last)}

    row = session.exec(select(DriftBaseline).where(col(DriftBaseline.retired_at).is_(None),
                                                   DriftBaseline.device_id == "cam-2")).one()
    row.levels = _scaled(row.levels, 4.0)
    session.add(row)
    session.commit()
    changed = _as_the_oracle_says(session)
    assert changed["cam-2"] != kept[("rel-a", "cam-2")]  # the kept levels would show

    _relearnt(session, 2.0)
    changed = _as_the_oracle_says(session)
    assert all(changed[d] != kept[("rel-a", d)] for d in ("cam-0", "cam-1", "cam-4"))


def _as_the_oracle_says(session: Session) -> dict[str | None, dict[str, Any]]:
    """An analysis's reports, held to the oracle's with every level parsed afresh; rel-a's
    statistics by device."""
    last = max(r.id or 0 for r in written(session, 0))
    analyser.run_analysis(session, SETTINGS, now=NOW)
    rows = written(session, last)
    learning._LEVELS.clear()
    assert_same_reports(rows, oracle.reports(session, SETTINGS, now=NOW))
    return {r.device_id: r.statistics for r in rows if r.release_id == "rel-a"}


def test_an_analysis_keys_each_camera_once_and_parses_no_levels_parsed_before(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an analysis repeated per camera is done once: each camera window's (camera,
    condition) key for the chunk (learning, the hour check and the verdicts all group by
    it), and each stored baseline's levels parsed once per process."""
    monkeypatch.setattr(analyser, "CHUNK_DEVICES", CHUNK)
    analyser.run_analysis(session, SETTINGS, now=NOW)  # learns the baselines
    analyser.run_analysis(session, SETTINGS, now=NOW)  # reads them: their levels parsed
    cameras: list[int] = []
    keyed: list[int] = []
    parsed: list[int] = []
    real_read, real_key, real_levels = analyser.read_recent, baseline.camera_key, baseline.levels_of

    def spy_read(session: Session, devices: dict[Any, Any], *args: Any, **kwargs: Any) -> None:
        real_read(session, devices, *args, **kwargs)
        cameras.append(sum(len(p.get("cameras") or []) for dev in devices.values()
                           for p in dev.recent))

    def spy_key(camera: dict[str, Any]) -> tuple[str, str]:
        keyed.append(1)
        return real_key(camera)

    def spy_levels(stored: dict[str, Any]) -> dict[str, baseline.Level]:
        parsed.append(sum(1 for v in stored.values() if not isinstance(v, baseline.Level)))
        return real_levels(stored)

    monkeypatch.setattr(analyser, "read_recent", spy_read)
    for module in (baseline, collect, recent, device_windows):
        monkeypatch.setattr(module, "camera_key", spy_key, raising=False)
    monkeypatch.setattr(baseline, "levels_of", spy_levels)
    analyser.run_analysis(session, SETTINGS, now=NOW)
    assert sum(cameras) > 0 and len(keyed) == sum(cameras)
    assert parsed and sum(parsed) == 0
