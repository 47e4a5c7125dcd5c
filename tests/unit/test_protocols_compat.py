"""Payloads stay readable across one protocol version in both directions.

The previous release's ``protocols`` package is read from git (the last commit before
regions and tracks were added) and imported beside the current one: what either side
writes without using a new feature, the other side reads.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from edge_agent.config import parse_mqtt_url
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from protocols import (
    CameraWindow,
    DesiredState,
    DeviceEvent,
    DeviceStatus,
    ReportedState,
    TelemetryWindow,
    encode,
)
from protocols.signing import canonical_json
from tests.unit.test_protocols_signing import make_manifest

PREVIOUS = "a84b2ae"  # the last release of protocols/v1 without regions
BEFORE_RAIN = "a44a6a7"  # the last one whose conditions were light only (no rain)
BEFORE_BACKGROUND = "787a61b"  # the last one without background_edges
REPO = Path(__file__).resolve().parents[2]


def _protocols_at(commit: str, package: str, root: Path) -> Iterator[ModuleType]:
    target = root / package
    try:
        names = subprocess.run(["git", "ls-tree", "--name-only", commit, "protocols/"],
                               cwd=REPO, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the previous protocols are not in this checkout's git history: {exc}")
    target.mkdir()
    for name in names.split():
        blob = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=REPO, check=True,
                              capture_output=True).stdout
        (target / Path(name).name).write_bytes(blob)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(root))
        for mod in [m for m in sys.modules if m.startswith(package)]:
            del sys.modules[mod]


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from _protocols_at(PREVIOUS, "protocols_previous", tmp_path_factory.mktemp("p"))


@pytest.fixture(scope="module")
def before_rain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from _protocols_at(BEFORE_RAIN, "protocols_before_rain", tmp_path_factory.mktemp("r"))


@pytest.fixture(scope="module")
def before_background(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from _protocols_at(BEFORE_BACKGROUND, "protocols_before_background",
                             tmp_path_factory.mktemp("b"))


def _window(**camera: object) -> TelemetryWindow:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    return TelemetryWindow(device_id="cam-1", seq=3, window_start=now, window_end=now,
                           cameras=[CameraWindow(camera_id="gate", state="up", **camera)])


def test_current_payloads_without_new_features_read_on_the_previous_version(
        previous: ModuleType) -> None:
    old = previous
    old.decode(old.TelemetryWindow, encode(_window(frames_inferred=4, class_counts={"cat": 4})))
    old.decode(old.DeviceEvent, encode(DeviceEvent(device_id="cam-1", seq=1, kind="detection",
                                                   label="cat", confidence=0.9)))
    manifest = make_manifest()
    old.ReleaseManifest.model_validate_json(canonical_json(manifest))


def test_previous_payloads_read_on_the_current_version(previous: ModuleType) -> None:
    old = previous
    now = datetime(2026, 12, 6, tzinfo=UTC)
    raw = old.encode(old.TelemetryWindow(
        device_id="cam-1", seq=3, window_start=now, window_end=now,
        cameras=[old.CameraWindow(camera_id="gate", state="up", frames_inferred=2)]))
    window = TelemetryWindow.model_validate_json(raw)
    camera = window.cameras[0]
    assert camera.mode is None and camera.animals == {} and camera.regions_classified == 0


def test_a_payload_that_uses_a_new_feature_is_refused_by_the_previous_version(
        previous: ModuleType) -> None:
    """Upgrade the control plane before the agents: the old one cannot read regions."""
    old = previous
    with pytest.raises(old.ProtocolError, match="animals"):
        old.decode(old.TelemetryWindow, encode(_window(mode="regions", animals={"dog": 1})))


def test_status_sessions_and_dropped_events_follow_the_same_rule(
        previous: ModuleType, tmp_path: Path) -> None:
    """A status without a session and a window that dropped no event read on the previous
    version; an agent with ``previous_protocol`` sends no session."""
    old = previous
    old.decode(old.DeviceStatus, encode(DeviceStatus(device_id="cam-1", state="offline")))
    old.decode(old.TelemetryWindow, encode(_window()))
    with pytest.raises(old.ProtocolError, match="session"):
        old.decode(old.DeviceStatus, encode(DeviceStatus(device_id="cam-1", state="online",
                                                         session="a1b2c3d4e5f6-1")))
    with pytest.raises(old.ProtocolError, match="dropped_events"):
        old.decode(old.TelemetryWindow, encode(_window().model_copy(
            update={"dropped_events": 2})))
    link = MqttLink("cam-1", parse_mqtt_url("mqtt://127.0.0.1:1"), Outbox(tmp_path / "o.db"),
                    lambda desired: None, "1", sessions=False)
    old.decode(old.DeviceStatus, link._status("online"))


def test_the_plain_desired_state_and_an_epoch_0_report_read_on_the_previous_version(
        previous: ModuleType) -> None:
    """The control plane writes the plain ``desired`` topic without epoch and rollback
    (what older agents read), and an agent in epoch 0 reports no epoch. The previous
    version refuses either field, hence the separate signed topic."""
    old = previous
    state = DesiredState(device_id="cam-1", revision=4, release_id="r1", epoch=7,
                         rollback=True)
    plain = state.model_copy(update={"epoch": 0, "rollback": False})
    assert old.decode(old.DesiredState, encode(plain)).revision == 4
    with pytest.raises(old.ProtocolError, match="epoch"):
        old.decode(old.DesiredState, encode(state))
    report = ReportedState(device_id="cam-1", agent_version="0.1.0", desired_revision=4,
                           desired_epoch=None)
    old.decode(old.ReportedState, encode(report))
    previous_state = old.encode(old.DesiredState(device_id="cam-1", revision=4))
    assert DesiredState.model_validate_json(previous_state).epoch == 0


def test_rain_is_a_new_condition_value_read_by_control_planes_that_know_it(
        before_rain: ModuleType) -> None:
    """A window tagged with a light condition reads on a control plane from before rain,
    and that one's windows read here; a rain window is refused there, naming the field
    (upgrade control planes before agents; ``previous_protocol`` sends no condition)."""
    old = before_rain
    for condition in ("day", "dusk", "night", "ir"):
        window = old.decode(old.TelemetryWindow, encode(_window(mode="regions",
                                                                condition=condition)))
        assert window.cameras[0].condition == condition
        raw = old.encode(old.TelemetryWindow.model_validate_json(encode(window)))
        assert TelemetryWindow.model_validate_json(raw).cameras[0].condition == condition
    rain = encode(_window(mode="regions", condition="rain"))
    with pytest.raises(old.ProtocolError, match="condition"):
        old.decode(old.TelemetryWindow, rain)
    assert TelemetryWindow.model_validate_json(rain).cameras[0].condition == "rain"


def test_background_edges_are_read_by_control_planes_that_know_them(
        before_background: ModuleType) -> None:
    """A regions window without ``background_edges`` reads on a control plane from before
    the field, and that one's windows read here (judged without the feature); a window
    with it is refused there, naming the field: upgrade control planes before agents."""
    old = before_background
    regions = {"mode": "regions", "edge_layout": [10] * 12, "region_width_hist": [1] * 7}
    window = old.decode(old.TelemetryWindow, encode(_window(**regions)))
    assert window.cameras[0].edge_layout == [10] * 12
    raw = old.encode(window)
    assert TelemetryWindow.model_validate_json(raw).cameras[0].background_edges == []
    new = encode(_window(**regions, background_edges=[3] * 48))
    with pytest.raises(old.ProtocolError, match="background_edges"):
        old.decode(old.TelemetryWindow, new)
    assert TelemetryWindow.model_validate_json(new).cameras[0].background_edges == [3] * 48
