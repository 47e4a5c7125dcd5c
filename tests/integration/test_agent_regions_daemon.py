"""A whole agent in regions mode: real Mosquitto, a looping MJPG clip, ONNX Runtime; windows
and per-track events as the control plane receives them, and what a control plane of the
previous protocol version reads from an agent that is told to speak it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from protocols import DeviceEvent, TelemetryWindow
from tests.agent_kit import Rig, running_rig, wait_until, write_video
from tests.conftest import Mosquitto, free_port
from tests.integration.test_agent_lifecycle import http_get
from tests.region_kit import BLUE, GREEN, RED, Thing, colour_release, crossing, write_clip
from tests.unit.test_protocols_compat import previous  # noqa: F401  (a fixture)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def cameras(tmp: Path) -> list[dict[str, Any]]:
    """A park camera (a cat, a person and a dog cross the lawn, again every 9 s) and a
    close-up camera classified whole."""
    things = [Thing(RED, (40, 30), crossing(20, 60, 20, 300, 45)),
              Thing(GREEN, (20, 60), crossing(20, 60, 40, 280, 125)),
              Thing(BLUE, (50, 36), crossing(25, 70, 300, 30, 200))]
    park = write_clip(tmp / "park.avi", things, 90)
    close_up = write_video(tmp / "close.avi", frames=20, fps=20)
    return [{"camera_id": "lawn", "source": str(park), "loop": True, "sample_fps": 10.0},
            {"camera_id": "gate", "source": str(close_up), "loop": True, "sample_fps": 5.0,
             "mode": "frame"}]


def camera(window: dict[str, Any], camera_id: str) -> dict[str, Any]:
    return next(c for c in window["cameras"] if c["camera_id"] == camera_id)


def test_regions_windows_count_crops_and_animals_and_events_follow_tracks(rig: Rig) -> None:
    rig.server.add(colour_release(rig.key, "colour-1"))
    rig.start_agent(rig.config(cameras(rig.tmp), window_seconds=3))
    rig.observer.desire(1, "colour-1")
    rig.wait_healthy("colour-1")
    wait_until(lambda: len({e["label"] for e in rig.observer.of("events")
                            if e["kind"] == "animal_left"}) == 2, 60, "a cat and a dog left")
    windows = [w for w in rig.observer.of("telemetry") if w["release_id"] == "colour-1"]
    for raw in windows:
        TelemetryWindow.model_validate_json(json.dumps(raw))
    lawn = [camera(w, "lawn") for w in windows]
    for c in lawn:
        assert c["mode"] == "regions" and c["condition"] == "day"
        assert sum(c.get("regions_per_frame", [])) == c["frames_inferred"]
        assert sum(c["class_counts"].values()) == c.get("regions_classified", 0)
        assert set(c.get("animals", {})) <= {"cat", "dog"}
    assert sum(c["class_counts"].get("other", 0) for c in lawn) > 0  # the person, seen
    seen = {label for c in lawn for label in c.get("animals", {})}
    assert seen == {"cat", "dog"}
    assert all(c.get("frames_without_animal", 0) <= c["frames_inferred"] for c in lawn)
    gate = [camera(w, "gate") for w in windows]
    assert all(c["mode"] == "frame" and c["condition"] for c in gate)
    assert all("regions_classified" not in c for c in gate)
    events = rig.observer.of("events")
    tracks = [e for e in events if e["kind"] in ("animal_appeared", "animal_left")]
    assert all(e["camera_id"] == "lawn" and e["label"] in ("cat", "dog") for e in tracks)
    assert all(e["release_id"] == "colour-1" and e["track_id"] >= 1 for e in tracks)
    for left in (e for e in tracks if e["kind"] == "animal_left"):
        appeared = [e for e in tracks if e["kind"] == "animal_appeared"
                    and e["track_id"] == left["track_id"]]
        assert [e["label"] for e in appeared] == [left["label"]]
        assert 2.0 <= left["dwell_seconds"] <= 6.0 and 2 <= len(left["path"]) <= 32
    assert all(e.get("camera_id") == "gate" for e in events if e["kind"] == "detection")


def test_an_agent_told_to_speak_the_previous_protocol_is_read_by_that_control_plane(
        rig: Rig, previous: ModuleType) -> None:  # noqa: F811
    rig.server.add(colour_release(rig.key, "colour-1"))
    rig.start_agent(rig.config(cameras(rig.tmp), window_seconds=2, previous_protocol=True))
    rig.observer.desire(1, "colour-1")
    rig.wait_healthy("colour-1")
    wait_until(lambda: {e.get("label") for e in rig.observer.of("events")
                        if e["kind"] == "detection" and e.get("camera_id") == "lawn"}
               >= {"cat", "dog"}, 60, "the animals' tracks as detections")
    wait_until(lambda: len([w for w in rig.observer.of("telemetry")
                            if camera(w, "lawn")["class_counts"]]) >= 2, 30, "windows")
    old = previous
    for raw in rig.observer.of("telemetry"):
        window = old.decode(old.TelemetryWindow, json.dumps(raw))
        assert {c.camera_id for c in window.cameras} == {"lawn", "gate"}
    kinds = set()
    for raw in rig.observer.of("events"):
        kinds.add(old.decode(old.DeviceEvent, json.dumps(raw)).kind)
        DeviceEvent.model_validate_json(json.dumps(raw))
    assert "animal_appeared" not in kinds and "detection" in kinds


def region_metrics(port: int) -> dict[tuple[str, str], float]:
    """The lawn camera's region samples from /metrics: (metric, outcome or kind) -> value."""
    code, text = http_get(f"http://127.0.0.1:{port}/metrics")
    assert code == 200
    return {(sample.name, sample.labels.get("outcome") or sample.labels["kind"]): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name in ("parkwatch_agent_regions_total", "parkwatch_agent_live_tracks")
            and sample.labels["camera_id"] == "lawn"}


def test_metrics_count_regions_and_tracks_open_at_stop_leave(rig: Rig) -> None:
    """/metrics has the camera's regions and live tracks; the dog is still on the lawn when
    the agent stops, and its track ends with animal_left all the same."""
    port = free_port()
    rig.server.add(colour_release(rig.key, "colour-1"))
    things = [Thing(BLUE, (50, 36), crossing(0, 120, 30, 290, 150)),  # never leaves
              Thing(GREEN, (20, 60), crossing(10, 60, 40, 280, 125))]
    park = write_clip(rig.tmp / "park.avi", things, 120)
    agent = rig.start_agent(rig.config(
        [{"camera_id": "lawn", "source": str(park), "loop": True, "sample_fps": 10.0}],
        window_seconds=2, metrics_port=port))
    rig.observer.desire(1, "colour-1")
    rig.wait_healthy("colour-1")

    def counted() -> dict[tuple[str, str], float] | None:
        m = region_metrics(port)
        return m if m.get(("parkwatch_agent_regions_total", "rejected"), 0) > 0 and m.get(
            ("parkwatch_agent_live_tracks", "animal")) == 1 else None

    m = wait_until(counted, 60, "a rejected person and a live dog in /metrics")
    classified = m[("parkwatch_agent_regions_total", "classified")]
    assert m[("parkwatch_agent_regions_total", "proposed")] > 0 and classified > 0
    assert m[("parkwatch_agent_regions_total", "rejected")] < classified
    assert m[("parkwatch_agent_live_tracks", "all")] >= 1
    rig.stop_agent(agent)

    def closed() -> list[dict[str, Any]] | None:
        events = rig.observer.of("events")
        opened = sorted(e["track_id"] for e in events if e["kind"] == "animal_appeared")
        left = [e for e in events if e["kind"] == "animal_left"]
        return left if opened and sorted(e["track_id"] for e in left) == opened else None

    last = wait_until(closed, 15, "an animal_left for every track")[-1]
    assert last["label"] == "dog" and last["dwell_seconds"] > 0 and last["path"]
