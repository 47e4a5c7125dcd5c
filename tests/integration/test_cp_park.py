"""The park view (``GET /api/v1/park``) over a real store, SQLite and PostgreSQL.

Events and windows go in through the ingest functions the MQTT adapter calls; the view
must count each animal once (a track), under the label its track ended with, show only
tracks still open as in view, and add up the windows' heat maps.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.services import devices, telemetry
from control_plane.store.db import create_db_engine, session_scope
from protocols import CameraWindow, DeviceEvent, DeviceStatus, TelemetryWindow
from protocols.messages import HEATMAP_COLS, HEATMAP_ROWS

API = "/api/v1"
CELLS = HEATMAP_COLS * HEATMAP_ROWS


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> ControlPlaneSettings:
    return ControlPlaneSettings(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def client(settings: ControlPlaneSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, enable_mqtt=False)) as c:
        token = settings.admin_token_path.read_text().strip()
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def _event(seq: int, kind: str, track: int, label: str, camera: str = "gate") -> DeviceEvent:
    return DeviceEvent(
        device_id="park-1", seq=seq, kind=kind, camera_id=camera, track_id=track,
        label=label, confidence=0.9, box=(0.1, 0.2, 0.1, 0.1),
        dwell_seconds=12.0 if kind == "animal_left" else None,
    )


def _window(seq: int, cell: int, condition: str) -> TelemetryWindow:
    heat = [0] * CELLS
    heat[cell] = 5
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=seq)
    camera = CameraWindow(camera_id="gate", state="up", mode="regions", condition=condition,
                          animals={"cat": 1}, animal_heatmap=heat)
    return TelemetryWindow(device_id="park-1", seq=seq, window_start=start,
                           window_end=start + timedelta(minutes=1), cameras=[camera])


def test_park_view_counts_tracks_and_sums_heat_maps(
    settings: ControlPlaneSettings, client: TestClient
) -> None:
    r = client.post(f"{API}/devices", json={"device_id": "park-1", "labels": {"park": "north"}})
    assert r.status_code == 201, r.text
    engine = create_db_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        devices.apply_status(session, DeviceStatus(device_id="park-1", state="online"))
        for event in (
            _event(1, "animal_appeared", 1, "cat"),
            _event(2, "animal_appeared", 2, "cat"),  # the vote later says dog
            _event(3, "animal_left", 1, "cat"),
            _event(4, "animal_left", 2, "dog"),
            _event(5, "animal_appeared", 3, "dog"),  # still in view
            _event(6, "animal_left", 9, "cat"),  # appeared before the range: no visit
            _event(7, "animal_appeared", 1, "dog", camera="lawn"),
            _event(8, "animal_left", 1, "dog", camera="lawn"),
        ):
            assert telemetry.ingest_event(session, event) == "stored"
        telemetry.ingest_windows(session, [_window(1, 10, "day"), _window(2, 10, "dusk"),
                                           _window(3, 20, "dusk")])
    engine.dispose()

    body = client.get(f"{API}/park").json()
    cams = {c["camera_id"]: c for c in body["cameras"]}
    assert set(cams) == {"gate", "lawn"}
    gate = cams["gate"]
    assert gate["totals"] == {"cat": 1, "dog": 2}
    assert sum(sum(h["animals"].values()) for h in gate["hourly"]) == 3
    assert [(a["track_id"], a["label"]) for a in gate["in_view"]] == [(3, "dog")]
    assert gate["heatmap"][10] == 10 and gate["heatmap"][20] == 5 and sum(gate["heatmap"]) == 15
    assert (gate["heatmap_cols"], gate["heatmap_rows"]) == (HEATMAP_COLS, HEATMAP_ROWS)
    assert gate["condition"] == "dusk" and gate["mode"] == "regions"
    assert gate["mean_dwell_seconds"] == pytest.approx(12.0)
    assert cams["lawn"]["totals"] == {"dog": 1} and cams["lawn"]["in_view"] == []

    with session_scope(create_db_engine(settings.resolved_database_url)) as session:
        devices.apply_status(session, DeviceStatus(device_id="park-1", state="offline"))
    offline = {c["camera_id"]: c for c in client.get(f"{API}/park").json()["cameras"]}
    assert offline["gate"]["in_view"] == [] and offline["gate"]["totals"] == gate["totals"]


def test_park_view_filters_and_refuses_bad_ranges(
    settings: ControlPlaneSettings, client: TestClient
) -> None:
    engine = create_db_engine(settings.resolved_database_url)
    for device_id in ("park-1", "park-2"):
        r = client.post(f"{API}/devices", json={"device_id": device_id})
        assert r.status_code == 201, r.text
        with session_scope(engine) as session:
            window = _window(1, 3, "day").model_copy(update={"device_id": device_id})
            telemetry.ingest_windows(session, [window])
    engine.dispose()
    every = client.get(f"{API}/park").json()["cameras"]
    assert {c["device_id"] for c in every} == {"park-1", "park-2"}
    only = client.get(f"{API}/park", params={"device": "park-2"}).json()["cameras"]
    assert [(c["device_id"], c["camera_id"]) for c in only] == [("park-2", "gate")]
    for hours in (0, 10_000):
        r = client.get(f"{API}/park", params={"hours": hours})
        assert r.status_code == 422 and "hours" in r.text
    assert client.get(f"{API}/park", headers={"Authorization": "Bearer nope"}).status_code == 401
