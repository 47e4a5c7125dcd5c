"""``GET /fleet``: the fleet page's figures counted by the store (SQLite and PostgreSQL)
agree with counting every device's listing, and the charts' points with the windows."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.services import devices, fleet_summary, telemetry
from control_plane.store.db import create_db_engine, session_scope, upgrade
from control_plane.store.models import Device
from control_plane.testing import reported_state, telemetry_window
from protocols import CameraStatus, CameraWindow, Percentiles, ReleaseStatus

API = "/api/v1"


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", database_url=database_url)
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        c.headers["Authorization"] = f"Bearer {settings.admin_token_path.read_text().strip()}"
        seed(database_url)
        yield c


def seed(url: str) -> None:
    """Six devices: r1 active on three (two healthy), r2 on one; cameras up and not; a
    shadow; one online; two told to run r2; one never reported; one reported nonsense."""
    now = datetime.now(UTC)
    cams = [[("a", "up"), ("b", "reconnecting")], [("a", "up")], [], [("a", "down")]]
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        for i in range(6):
            s.add(Device(device_id=f"d{i}", labels={}, online=i == 0,
                         desired_release_id="r2" if i in (1, 3) else None))
        s.flush()
        for i, (release, stage) in enumerate(
                [("r1", "healthy"), ("r1", "healthy"), ("r1", "warmed"), ("r2", "healthy")]):
            state = reported_state(f"d{i}", release, stage).model_copy(update={
                "cameras": [CameraStatus(camera_id=c, state=st) for c, st in cams[i]]})
            if i == 1:
                shadow = ReleaseStatus(release_id="r3", model_version="3", stage="healthy",
                                       since=now)
                state = state.model_copy(update={"shadow": shadow})
            devices.apply_reported(s, state)
        s.flush()
        s.get(Device, "d5").reported = {"cameras": "not a list", "active": 7}  # type: ignore[union-attr]
        for seq in range(3):
            w = telemetry_window("d0", seq, "r1", class_counts={"cat": 3}, p95_ms=10.0 + seq)
            end = now - timedelta(minutes=3 - seq)
            telemetry.ingest_window(s, w.model_copy(update={
                "window_start": end - timedelta(minutes=1), "window_end": end}),
                received_at=end)
    engine.dispose()


def from_listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What the dashboard used to count in the browser from every device."""
    cams = [c for d in items for c in ((d["reported"] or {}).get("cameras") or [])
            if isinstance(c, dict)]
    running: dict[str, list[int]] = {}
    for d in items:
        if d["current_release_id"]:
            n = running.setdefault(d["current_release_id"], [0, 0, 0])
            n[0] += 1
            n[1] += d["reported"]["active"]["stage"] == "healthy"
    for d in items:
        if d["desired_release_id"] in running:
            running[d["desired_release_id"]][2] += 1
    return {"devices": len(items), "online": sum(d["online"] for d in items),
            "cameras_up": sum(c["state"] == "up" for c in cams),
            "cameras_not_up": sum(c["state"] != "up" for c in cams),
            "releases": {r: tuple(n) for r, n in running.items()}}


def test_summary_counts_what_the_listing_shows(client: TestClient) -> None:
    listing = client.get(f"{API}/devices", params={"limit": 1000}).json()["items"]
    r = client.get(f"{API}/fleet")
    assert r.status_code == 200, r.text
    got = r.json()
    expected = from_listing(listing)
    assert {k: got[k] for k in ("devices", "online", "cameras_up", "cameras_not_up")} == {
        k: expected[k] for k in ("devices", "online", "cameras_up", "cameras_not_up")}
    assert (got["devices"], got["online"], got["cameras_up"], got["cameras_not_up"]) == (6, 1, 2, 2)
    assert {x["release_id"]: (x["devices"], x["healthy"], x["desired_by"])
            for x in got["releases"]} == expected["releases"] == {"r1": (3, 2, 0),
                                                                   "r2": (1, 1, 2)}
    assert [x["release_id"] for x in got["releases"]] == ["r1", "r2"]  # most devices first
    assert [(x["release_id"], x["devices"], x["healthy"]) for x in got["shadows"]] == [
        ("r3", 1, 1)]


def test_summary_charts_the_newest_windows(client: TestClient) -> None:
    points = client.get(f"{API}/fleet", params={"windows": 2}).json()["windows"]
    assert [p["latency_p95_ms"] for p in points] == [12.0, 11.0]  # newest first
    assert all(p["device_id"] == "d0" for p in points)
    assert client.get(f"{API}/fleet", params={"windows": -1}).status_code == 422


def test_migration_fills_the_columns_from_stored_reported_states(database_url: str) -> None:
    """Devices that reported before 0014 are counted from their stored JSON at once."""
    upgrade(database_url, "0013")
    state = reported_state("old", "r9").model_copy(update={"cameras": [
        CameraStatus(camera_id="a", state="up"), CameraStatus(camera_id="b", state="down")]})
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO device (device_id, labels, online, desired_revision, created_at, "
                "reported) VALUES ('old', '{}', false, 0, CURRENT_TIMESTAMP, :r), "
                "('junk', '{}', false, 0, CURRENT_TIMESTAMP, :j)"),
                {"r": state.model_dump_json(), "j": '{"cameras": 3, "active": [1]}'})
        upgrade(database_url)
        with session_scope(engine) as s:
            summary = fleet_summary.fleet_summary(s, windows=0)
    finally:
        engine.dispose()
    assert (summary.devices, summary.cameras_up, summary.cameras_not_up) == (2, 1, 1)
    assert [(r.release_id, r.devices, r.healthy) for r in summary.releases] == [("r9", 1, 1)]


def test_summary_reads_the_device_table_once(client: TestClient, database_url: str) -> None:
    """Counts, releases, shadows and desired releases come from one aggregate query, not a
    scan of the device table each (five at 10,000 devices: most of the call's time)."""
    engine = create_db_engine(database_url)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope(engine) as s:
            summary = fleet_summary.fleet_summary(s, windows=2)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
        engine.dispose()
    assert (summary.devices, summary.online) == (6, 1)
    assert {r.release_id: r.desired_by for r in summary.releases} == {"r1": 0, "r2": 2}
    scans = [s for s in statements if "from device" in s]
    assert len(scans) == 1, scans


def _cameras(*figures: tuple[float, float | None]) -> list[CameraWindow]:
    return [CameraWindow(camera_id=f"c{i}", state="up", inference_fps=fps,
                         inference_ms=None if p95 is None else Percentiles(
                             p50=p95 / 2, p95=p95, p99=p95))
            for i, (fps, p95) in enumerate(figures)]


CHARTED = [_cameras((2.5, 12.0), (4.0, 30.0)), _cameras((1.5, None)), []]


def test_chart_points_are_written_at_ingest_and_read_without_payloads(
        client: TestClient, database_url: str) -> None:
    """Several cameras add their frame rates, the worst p95 is charted, a window without
    latency or cameras charts none; the page reads those columns, never a payload."""
    now = datetime.now(UTC) + timedelta(minutes=1)  # newer than the seeded windows
    engine = create_db_engine(database_url)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    try:
        with session_scope(engine) as s:
            telemetry.ingest_windows(s, [
                telemetry_window("d1", seq, "r1").model_copy(update={
                    "cameras": cams, "window_start": now + timedelta(minutes=seq),
                    "window_end": now + timedelta(minutes=seq + 1)})
                for seq, cams in enumerate(CHARTED)])
        sa.event.listen(engine, "before_cursor_execute", seen)
        with session_scope(engine) as s:
            points = fleet_summary.newest_points(s, 3)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
        engine.dispose()
    by_end = sorted(points, key=lambda p: p.window_end)
    assert [(p.device_id, p.inference_fps, p.latency_p95_ms) for p in by_end] == [
        ("d1", 6.5, 30.0), ("d1", 1.5, None), ("d1", 0.0, None)]
    assert not [s for s in statements if "payload" in s], statements


def test_migration_fills_the_chart_columns_from_stored_windows(database_url: str) -> None:
    """Windows stored before 0017 are charted from their JSON at once."""
    upgrade(database_url, "0016")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO device (device_id, labels, online, desired_revision, created_at) "
                "VALUES ('old', '{}', false, 0, CURRENT_TIMESTAMP)"))
            for seq, cams in enumerate(CHARTED):
                w = telemetry_window("old", seq, "r1").model_copy(update={"cameras": cams})
                conn.execute(sa.text(
                    "INSERT INTO telemetry_window (device_id, instance, seq, window_start, "
                    "window_end, release_id, received_at, payload) VALUES ('old', '', :seq, "
                    ":start, :end, 'r1', :end, :payload)"),
                    {"seq": seq, "start": w.window_start, "end": w.window_end,
                     "payload": w.model_dump_json(by_alias=True)})
        upgrade(database_url)
        with session_scope(engine) as s:
            points = fleet_summary.newest_points(s, 3)
    finally:
        engine.dispose()
    assert [(p.inference_fps, p.latency_p95_ms) for p in points] == [
        (0.0, None), (1.5, None), (6.5, 30.0)]


@contextmanager
def _app(database_url: str, data_dir: Path, max_age_s: float) -> Iterator[TestClient]:
    settings = ControlPlaneSettings(data_dir=data_dir, database_url=database_url,
                                    fleet_counts_max_age_seconds=max_age_s)
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        c.headers["Authorization"] = f"Bearer {settings.admin_token_path.read_text().strip()}"
        yield c


def _figures(got: dict[str, Any]) -> tuple[Any, ...]:
    return (got["devices"], got["online"], got["cameras_up"], got["cameras_not_up"],
            [(r["release_id"], r["devices"], r["healthy"], r["desired_by"])
             for r in got["releases"]],
            [(r["release_id"], r["devices"], r["healthy"]) for r in got["shadows"]])


def _counted_now(database_url: str) -> tuple[Any, ...]:
    """The oracle: the device table counted afresh, as every request did before."""
    engine = create_db_engine(database_url)
    try:
        with session_scope(engine) as s:
            c = fleet_summary.fleet_counts(s)
    finally:
        engine.dispose()
    return _figures({"devices": c.devices, "online": c.online, "cameras_up": c.cameras_up,
                     "cameras_not_up": c.cameras_not_up,
                     "releases": [r.model_dump() for r in c.releases],
                     "shadows": [r.model_dump() for r in c.shadows]})


def change_states(url: str) -> None:
    """Devices move: d2 goes healthy on r2 with both cameras up, d0 goes offline, d4 comes
    online, d5 is told to run r1, a seventh device arrives and reports r3."""
    engine = create_db_engine(url)
    with session_scope(engine) as s:
        up = [CameraStatus(camera_id=c, state="up") for c in ("a", "b")]
        devices.apply_reported(s, reported_state("d2", "r2", "healthy").model_copy(
            update={"cameras": up}))
        s.get(Device, "d0").online = False  # type: ignore[union-attr]
        s.get(Device, "d4").online = True  # type: ignore[union-attr]
        s.get(Device, "d5").desired_release_id = "r1"  # type: ignore[union-attr]
        s.add(Device(device_id="d6", labels={}, online=True))
        s.flush()
        devices.apply_reported(s, reported_state("d6", "r3", "warmed"))
    engine.dispose()


def test_kept_figures_are_the_counts_of_their_time(database_url: str, tmp_path: Path) -> None:
    """Within their age the page gets the figures as counted, saying when; once they are
    too old it gets the device table counted again, equal to a fresh count (and to what the
    listing shows) after devices changed state."""
    with _app(database_url, tmp_path / "data", max_age_s=3600) as c:
        seed(database_url)
        first = c.get(f"{API}/fleet").json()
        assert _figures(first) == _counted_now(database_url)
        change_states(database_url)
        kept = c.get(f"{API}/fleet").json()
        assert _figures(kept) == _figures(first) != _counted_now(database_url)
        assert kept["counted_at"] == first["counted_at"]
        assert kept["counts_age_s"] >= first["counts_age_s"] >= 0
    with _app(database_url, tmp_path / "data", max_age_s=0) as c:
        fresh = c.get(f"{API}/fleet").json()
        assert _figures(fresh) == _counted_now(database_url) != _figures(first)
        listing = c.get(f"{API}/devices", params={"limit": 1000}).json()["items"]
        expected = from_listing(listing)
        assert (fresh["devices"], fresh["online"], fresh["cameras_up"],
                fresh["cameras_not_up"]) == tuple(
            expected[k] for k in ("devices", "online", "cameras_up", "cameras_not_up"))
        assert {r["release_id"]: (r["devices"], r["healthy"], r["desired_by"])
                for r in fresh["releases"]} == expected["releases"]
        assert (fresh["devices"], fresh["online"]) == (7, 2)
        assert fresh["counted_at"] > first["counted_at"]


@pytest.mark.postgres
def test_the_pages_reads_open_no_transaction(postgres_url: str, tmp_path: Path) -> None:
    """The fleet page's three calls only read: on PostgreSQL each statement is its own
    transaction, so no BEGIN and no ROLLBACK travel (two of a call's few round trips);
    a call that writes still runs in one transaction."""
    settings = ControlPlaneSettings(  # no periodic task shares the engine meanwhile
        data_dir=tmp_path / "data", database_url=postgres_url, rollout_tick_seconds=0,
        drift={"analysis_interval_s": 0})
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        c.headers["Authorization"] = f"Bearer {settings.admin_token_path.read_text().strip()}"
        seed(postgres_url)
        engine = c.app.state.parkwatch.engine  # type: ignore[attr-defined]
        seen: list[tuple[str, str]] = []  # (statement, transaction status after it)

        def after(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
            status = conn.connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
            seen.append((" ".join(statement.split())[:60], status.name))

        sa.event.listen(engine, "after_cursor_execute", after)
        try:
            for path, params in (("/fleet", {"windows": 300}), ("/devices", {"limit": 100}),
                                 ("/alerts", {"state": "open", "limit": 1})):
                assert c.get(f"{API}{path}", params=params).status_code == 200
            reads, seen[:] = list(seen), []
            r = c.patch(f"{API}/devices/d0/labels", json={"set": {"park": "north"}})
            assert r.status_code == 200, r.text
        finally:
            sa.event.remove(engine, "after_cursor_execute", after)
    assert reads and [r for r in reads if r[1] != "IDLE"] == []
    assert "INTRANS" in {status for _, status in seen}, seen
