"""The fleet simulator's pure parts: drift plan, histogram shifts, synthetic windows,
reported states, argument checks, and a bad desired state that must not stop a device."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import paho.mqtt.client as paho
import pytest

from protocols import DesiredState, ReportedState, TelemetryWindow, decode, encode
from scripts.fleet_agents import Fleet, ManifestCache
from scripts.fleet_sim import config_from, parse_args
from scripts.fleet_synth import (
    DriftPlan,
    SimConfig,
    class_pmf,
    default_profile,
    device_ids,
    device_labels,
    reported_after,
    shift_pmf,
    telemetry_window,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_shift_pmf_moves_mass_and_keeps_it() -> None:
    pmf = [0.1, 0.2, 0.3, 0.4]
    assert shift_pmf(pmf, 0.0) == pytest.approx(pmf)
    assert shift_pmf(pmf, -1.0) == pytest.approx([0.3, 0.3, 0.4, 0.0])  # bin 0 piles up
    assert shift_pmf(pmf, 0.5) == pytest.approx([0.05, 0.15, 0.25, 0.55])
    assert sum(shift_pmf(pmf, -2.7)) == pytest.approx(1.0)
    assert shift_pmf([0.0, 1.0], 10.0) == pytest.approx([0.0, 1.0])


def test_drift_plan_picks_the_first_devices_and_ramps() -> None:
    plan = DriftPlan(fraction=0.25, magnitude=0.8, after_windows=3, ramp_windows=4)
    assert [plan.drifts(i, 8) for i in range(8)] == [True, True] + [False] * 6
    assert plan.level(0, 8, 2) == 0.0
    assert plan.level(0, 8, 3) == pytest.approx(0.2)
    assert plan.level(0, 8, 6) == pytest.approx(0.8)
    assert plan.level(0, 8, 60) == pytest.approx(0.8)
    assert plan.level(5, 8, 60) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"fraction": 1.5}, {"magnitude": -0.1}, {"after_windows": -1}, {"ramp_windows": 0}],
)
def test_drift_plan_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DriftPlan(**kwargs)  # type: ignore[arg-type]


def test_class_pmf_skews_towards_the_first_label() -> None:
    pmf = class_pmf({"cat": 1.0, "dog": 1.0, "empty": 2.0}, drift=1.0)
    assert sum(pmf.values()) == pytest.approx(1.0)
    assert pmf["cat"] == pytest.approx(0.5 * 0.25 + 0.5)
    assert class_pmf({"cat": 1.0, "dog": 3.0}, 0.0) == pytest.approx({"cat": 0.25, "dog": 0.75})


def _mean_bin(counts: list[int]) -> float:
    return float(np.dot(np.arange(len(counts)), counts) / sum(counts))


def test_windows_follow_the_profile_and_drift_darkens_them() -> None:
    profile = default_profile(bins=10)
    rng = np.random.default_rng(1)
    kwargs = {
        "device_id": "sim-0001",
        "seq": 7,
        "start": NOW,
        "seconds": 60.0,
        "camera_ids": ["a", "b"],
        "fps": 10.0,
        "release_id": "r1",
        "model_version": "3",
    }
    day = telemetry_window(rng, profile, drift=0.0, **kwargs)  # type: ignore[arg-type]
    night = telemetry_window(rng, profile, drift=1.0, **kwargs)  # type: ignore[arg-type]
    assert decode(TelemetryWindow, encode(night)) == night  # valid on the wire
    cam = day.cameras[0]
    assert cam.frames_inferred == 600 and sum(cam.class_counts.values()) == 600
    assert sum(cam.confidence_hist) == 600 and len(cam.confidence_hist) == 10
    assert set(cam.input_hists) == set(profile.input_stats)
    assert all(sum(h) == 600 for h in cam.input_hists.values())
    assert len(cam.embedding_hists) == len(profile.embedding_hists)
    for name in ("brightness", "saturation"):
        assert _mean_bin(night.cameras[0].input_hists[name]) < _mean_bin(cam.input_hists[name]) - 2
    assert _mean_bin(night.cameras[0].confidence_hist) < _mean_bin(cam.confidence_hist) - 2
    assert (night.window_end - night.window_start).total_seconds() == 60.0


def test_reported_state_after_desired_states() -> None:
    base = reported_after(
        _initial(), DesiredState(device_id="sim-0000", revision=1, release_id="r1"), "1", NOW
    )
    assert base.active is not None and (base.active.release_id, base.active.stage) == (
        "r1",
        "healthy",
    )
    assert base.desired_revision == 1
    nxt = reported_after(
        base, DesiredState(device_id="sim-0000", revision=2, release_id="r2"), "2", NOW
    )
    assert nxt.active is not None and nxt.active.release_id == "r2"
    assert nxt.previous_release_id == "r1"
    shadow = reported_after(
        base,
        DesiredState(device_id="sim-0000", revision=3, release_id="r3", mode="shadow"),
        "3",
        NOW,
    )
    assert shadow.active == base.active and shadow.shadow is not None
    assert shadow.shadow.release_id == "r3"
    failed = reported_after(
        base, DesiredState(device_id="sim-0000", revision=4, release_id="r4"), "4", NOW, reject=True
    )
    assert failed.active == base.active  # keeps serving what it had
    assert failed.last_transition is not None and not failed.last_transition.ok


def _initial() -> ReportedState:
    return ReportedState(device_id="sim-0000", agent_version="0.1.0-sim")


def test_device_ids_and_labels() -> None:
    config = SimConfig(devices=10, drift=DriftPlan(fraction=0.2, magnitude=0.5))
    assert device_ids("park", 3) == ["park-0000", "park-0001", "park-0002"]
    assert device_labels(config, 1)["condition"] == "night"
    assert device_labels(config, 2)["condition"] == "day"
    assert device_labels(config, 9)["park"] == "park2"


def test_arguments_are_checked_with_a_clear_error() -> None:
    with pytest.raises(SystemExit, match=r"drift fraction 2\.0 must be within"):
        config_from(parse_args(["--drift-fraction", "2"]))
    with pytest.raises(SystemExit, match="must be > 0"):
        config_from(parse_args(["--devices", "0"]))
    config = config_from(parse_args(["--devices", "3", "--reject-release", "bad"]))
    assert config.devices == 3 and config.reject_releases == frozenset({"bad"})


def test_a_bad_desired_state_is_counted_and_dropped() -> None:
    fleet = Fleet(SimConfig(devices=1), "mqtt://127.0.0.1:1", ManifestCache(None))
    device = fleet.devices[0]
    before = device.reported
    msg = paho.MQTTMessage(topic=b"parkwatch/v1/devices/sim-0000/desired")
    msg.payload = b'{"schema": "parkwatch/v1", "device_id": "sim-0000", "revision": -1}'
    fleet._on_message(device.client, device, msg)
    assert fleet.stats.errors == 1 and fleet.stats.desired_handled == 0
    assert device.reported == before
    good = DesiredState(device_id="sim-0000", revision=1, release_id="r1")
    msg.payload = encode(good)
    fleet._on_message(device.client, device, msg)  # offline: paho queues the publish
    assert fleet.stats.desired_handled == 1
    assert device.reported.active is not None and device.reported.active.release_id == "r1"


def test_a_shadowed_release_is_compared_on_every_frame() -> None:
    rng = np.random.default_rng(5)
    window = telemetry_window(
        rng,
        default_profile(),
        device_id="sim-0002",
        seq=1,
        start=NOW,
        seconds=60.0,
        camera_ids=["a", "b"],
        drift=0.0,
        fps=10.0,
        release_id="r1",
        shadow_release_id="r2",
        shadow_agreement=0.9,
    )
    assert window.shadow is not None and window.shadow.release_id == "r2"
    assert window.shadow.frames_compared == 1200
    assert 0.85 < window.shadow.agreements / 1200 < 0.95
    assert sum(window.shadow.class_counts.values()) == 1200
    assert decode(TelemetryWindow, encode(window)) == window
    with pytest.raises(SystemExit, match="shadow-agreement"):
        config_from(parse_args(["--shadow-agreement", "1.5"]))
