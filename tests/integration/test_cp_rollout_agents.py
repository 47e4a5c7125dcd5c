"""Rollouts with real agents: `parkwatch serve` (a real process), a real Mosquitto and
three in-process edge agents that download, verify and run real ONNX models on video.

A good release goes fleet-wide wave by wave; a release whose model outputs garbage
(it calls every frame "empty"; its own golden outputs, so the on-device smoke test
passes) is stopped by the class-shift gate in the canary wave and rolled back, and
the devices outside the canary never receive it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.testing import registration
from edge_agent import Agent, load_settings
from protocols import OutputSpec, generate_signing_key
from scripts.loop import Loop, wait_until
from tests.agent_kit import Observer, make_release, write_video
from tests.agent_models import LABELS, SPEC, build_model, profile
from tests.conftest import Mosquitto
from tests.integration.test_cp_rollout_mqtt import ControlPlane

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
# Latency slack: a tiny model's p95 on a busy test machine jitters by milliseconds.
GATES = {"ack_timeout_s": 60, "min_windows": 2, "health_timeout_s": 60,
         "latency_slack_ms": 100}


@pytest.fixture
def cp(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    plane = ControlPlane(Loop(tmp_path / "loop", mqtt_url=mosquitto.url))
    try:
        plane.start()
        yield plane
    finally:
        plane.loop.stop_all()
        if plane.proc is not None:
            print(plane.proc.tail(40))


def register(cp: ControlPlane, model: bytes, version: str) -> str:
    """Upload and register ``model`` (golden outputs from itself); release it."""
    token = (cp.loop.cp_dir / "admin.token").read_text().strip()
    r = httpx.post(f"{cp.loop.api_url}/api/v1/artifacts", content=model, timeout=10,
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 201), r.text
    goldens = make_release(generate_signing_key(), "x", model).manifest.golden_inputs
    spec = registration("tiny", [(r.json()["sha256"], len(model), "fp32")], labels=LABELS,
                        input=SPEC, outputs=OutputSpec(embedding_dim=3),
                        golden_inputs=goldens, reference_profile=profile())
    cp.call("POST", "/models/tiny/versions", spec.model_dump(mode="json"))
    return str(cp.call("POST", "/releases", {"model_name": "tiny", "version": version})
               ["release_id"])


def start_agents(cp: ControlPlane, tmp: Path, ids: list[str]) -> list[Agent]:
    # A dog in every frame (bright): sound models say "dog" throughout, so the test does
    # not hang on how a video's class mix falls into windows (test_cp_rollout_mqtt and
    # the unit tests cover mixed counts and the calibration).
    video = write_video(tmp / "park.avi", frames=40)
    agents = []
    for i, device_id in enumerate(ids):
        answer = cp.call("POST", "/devices", {
            "device_id": device_id, "labels": {"park": f"p{i}"},
            "cameras": [{"camera_id": "gate", "source": str(video), "loop": True,
                         "sample_fps": 10.0}],
            "agent_data_dir": str(tmp / device_id)})
        config = tmp / f"{device_id}.toml"
        # Top-level keys go before the [[cameras]] tables; the last table is the camera,
        # a close-up one (the clip is one scene), classified whole.
        config.write_text("window_seconds = 1.0\nintra_op_threads = 1\n"
                          + answer["agent_config_toml"] + 'mode = "frame"\n')
        agent = Agent(load_settings(config))
        agent.start()
        agents.append(agent)
    return agents


def test_real_agents_good_release_fleet_wide_garbage_stopped_in_canary(
    cp: ControlPlane, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    ids = ["park-a", "park-b", "park-c"]
    good = register(cp, build_model(), "1")
    garbage = register(cp, build_model(bias=-20.0), "2")  # "empty" whatever it sees
    better = register(cp, build_model(bias=0.1), "3")
    observers = {d: Observer(mosquitto.url, d) for d in ids}
    agents = start_agents(cp, tmp_path, ids)
    try:
        first = cp.call("POST", "/rollouts", {"release_id": good, "waves": ["1", "100%"],
                                              "gates": GATES})
        view = cp.wait_state(first["rollout_id"], "completed", timeout=90)
        assert [w["device_count"] for w in view["waves"]] == [1, 2]
        windows = cp.call("GET", "/telemetry", None)["items"]
        assert {w["release_id"] for w in windows} >= {good}

        bad = cp.call("POST", "/rollouts", {"release_id": garbage, "gates": GATES})
        view = cp.wait_state(bad["rollout_id"], "paused", timeout=90)
        wave = view["waves"][0]
        assert wave["state"] == "rolled_back", view["waves"]
        gates = {g["name"]: g for g in wave["gates"]}
        assert gates["ack"]["status"] == "pass"  # the agent accepted and ran it...
        assert gates["class_shift"]["status"] == "fail", gates  # ...and it said "empty"
        canary = next(d["device_id"] for d in view["devices"] if d["wave"] == 1)

        def serving(device_id: str) -> Any:
            reported = cp.call("GET", f"/devices/{device_id}")["reported"] or {}
            return (reported.get("active") or {}).get("release_id")

        wait_until(lambda: serving(canary) == good, 60, "the canary back on the good release",
                   interval=0.3)
        for device_id, observer in observers.items():
            seen = {m.get("release_id") for m in observer.of("desired")}
            assert (garbage in seen) == (device_id == canary), (device_id, seen)

        cp.call("POST", f"/rollouts/{bad['rollout_id']}/abort", {"reason": "garbage"})
        fixed = cp.call("POST", "/rollouts", {"release_id": better, "gates": GATES,
                                              "waves": ["1", "50%", "100%"]})
        view = cp.wait_state(fixed["rollout_id"], "completed", timeout=120)
        assert [w["state"] for w in view["waves"]] == ["passed"] * 3
        wait_until(lambda: all(serving(d) == better for d in ids), 30,
                   "every device serving the fixed release", interval=0.3)
    finally:
        for agent in agents:
            agent.stop()
        for observer in observers.values():
            observer.close()
