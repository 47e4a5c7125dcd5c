"""Rollouts end to end over a real Mosquitto, with `parkwatch serve` as a real process.

Simulated devices are real paho MQTT clients that behave like agents on the wire:
they read their retained desired state, report the release active, and publish
telemetry windows whose class counts depend on the release ("garbage" releases
predict one class). The control plane is SIGKILLed in the middle of a wave and
restarted; the rollout picks up from the store and completes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from control_plane.testing import registration, telemetry_window
from protocols import (
    DesiredState,
    DeviceStatus,
    ReleaseStatus,
    ReportedState,
    decode,
    desired_topic,
    encode,
    reported_topic,
    status_topic,
    telemetry_topic,
)
from scripts.loop import Loop, Proc, wait_until
from tests.conftest import Mosquitto

# Deadlines for a loaded CI machine (load 40 on 2 cores: each step some ten times slower
# than on an idle one); a step that is done ends its wait at once.
STEP_S = 180  # the most one step may take (a control-plane start, a wave)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
GOOD = {"dog": 30, "cat": 20}
GARBAGE = {"dog": 50}
# health_timeout_s: wave 2's windows come only after the restart (below), which may take
# a minute under load; the rollout must not fail the wave for that.
GATES = {"ack_timeout_s": 60, "offline_deadline_s": 600, "min_windows": 2,
         "health_timeout_s": 600}


class SimDevice:
    """One device on its own MQTT connection, doing what an agent does on the wire."""

    def __init__(self, port: int, device_id: str, garbage: set[str]) -> None:
        self.device_id, self.port, self.garbage = device_id, port, garbage
        self.desired: list[DesiredState] = []
        self.running: str | None = None
        self.held: set[str] = set()  # releases it runs but sends no windows of (yet)
        self.seq = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{device_id}")
        self.client.will_set(status_topic(device_id), encode(
            DeviceStatus(device_id=device_id, state="offline")), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._thread = threading.Thread(target=self._publish_windows, daemon=True)

    def start(self) -> SimDevice:
        self._stop.clear()
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._publish_windows, daemon=True)
        self._thread.start()
        return self

    def go_offline(self) -> None:
        self._stop.set()
        self._thread.join()
        self.client.publish(status_topic(self.device_id), encode(
            DeviceStatus(device_id=self.device_id, state="offline")), qos=1,
            retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.publish(status_topic(self.device_id), encode(
            DeviceStatus(device_id=self.device_id, state="online")), qos=1, retain=True)
        client.subscribe(desired_topic(self.device_id), qos=1)

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        desired = decode(DesiredState, msg.payload)
        with self._lock:
            if self.desired and desired.revision <= self.desired[-1].revision:
                return
            self.desired.append(desired)
            previous, self.running = self.running, desired.release_id
        if desired.release_id is None:
            return
        now = datetime.now(UTC)
        reported = ReportedState(
            device_id=self.device_id, agent_version="0.1.0", desired_revision=desired.revision,
            active=ReleaseStatus(release_id=desired.release_id, model_version="1",
                                 stage="healthy", since=now),
            previous_release_id=previous, updated_at=now)
        self.client.publish(reported_topic(self.device_id), encode(reported), qos=1, retain=True)

    def _publish_windows(self) -> None:
        while not self._stop.wait(0.3):
            with self._lock:
                release = self.running
                self.seq += 1
                seq = self.seq
                if release is None or release in self.held:
                    continue
            counts = GARBAGE if release in self.garbage else GOOD
            window = telemetry_window(self.device_id, seq, release, class_counts=counts)
            now = datetime.now(UTC)
            window = window.model_copy(update={"window_start": now - timedelta(seconds=0.3),
                                               "window_end": now})
            self.client.publish(telemetry_topic(self.device_id), encode(window), qos=1)

    def hold(self, release: str) -> None:
        """Send no windows of ``release``: a wave that has it cannot pass its gates."""
        with self._lock:
            self.held.add(release)

    def let_go(self, release: str) -> None:
        with self._lock:
            self.held.discard(release)

    def releases(self) -> list[str | None]:
        with self._lock:
            return [d.release_id for d in self.desired]


class ControlPlane:
    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.proc: Proc | None = None

    def start(self) -> None:
        self.proc = self.loop.spawn("control-plane", "serve",
                                    PARKWATCH_ROLLOUT_TICK_SECONDS="0.2")

        def healthy() -> bool:
            assert self.proc is not None
            if not self.proc.alive():
                raise RuntimeError(f"control plane exited:\n{self.proc.tail()}")
            body = httpx.get(f"{self.loop.api_url}/healthz", timeout=2).json()
            return bool(body["mqtt"] == "connected")

        wait_until(healthy, STEP_S, "the control plane's /healthz", interval=0.2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.popen.kill()  # SIGKILL: no shutdown hook runs
        self.proc.popen.wait()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        token = (self.loop.cp_dir / "admin.token").read_text().strip()
        r = httpx.request(method, f"{self.loop.api_url}/api/v1{path}", json=body,
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code < 300, r.text
        return r.json()

    def rollout(self, rollout_id: str) -> Any:
        return self.call("GET", f"/rollouts/{rollout_id}")

    def wait_state(self, rollout_id: str, state: str, timeout: float = STEP_S) -> Any:
        try:
            return wait_until(lambda: (r := self.rollout(rollout_id))["state"] == state and r,
                              timeout, f"rollout {rollout_id} {state}", interval=0.2)
        except TimeoutError:
            view = self.rollout(rollout_id)
            raise AssertionError(f"rollout not {state}: {view['state']} "
                                 f"{view['paused_reason']}; waves {view['waves']}; "
                                 f"devices {view['devices']}") from None


@pytest.fixture
def cp(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[ControlPlane]:
    loop = Loop(tmp_path / "loop", mqtt_url=mosquitto.url)
    plane = ControlPlane(loop)
    try:
        plane.start()
        yield plane
    finally:
        loop.stop_all()
        if plane.proc is not None:
            print(plane.proc.tail(40))


def _release(cp: ControlPlane) -> str:
    blob = b"model-bytes" * 10
    token = (cp.loop.cp_dir / "admin.token").read_text().strip()
    r = httpx.post(f"{cp.loop.api_url}/api/v1/artifacts", content=blob, timeout=10,
                   headers={"Authorization": f"Bearer {token}"})
    sha = r.json()["sha256"]
    spec = registration("petnet", [(sha, len(blob), "int8")])
    cp.call("POST", "/models/petnet/versions", spec.model_dump(mode="json"))
    return str(cp.call("POST", "/releases", {"model_name": "petnet"})["release_id"])


def test_waves_survive_a_restart_stop_garbage_and_catch_up_offline_devices(
    cp: ControlPlane, mosquitto: Mosquitto
) -> None:
    ids = [f"cam-{i}" for i in range(6)]
    for i, d in enumerate(ids):
        cp.call("POST", "/devices", {"device_id": d, "labels": {"park": f"p{i % 2}"}})
    r1, r2, bad = _release(cp), _release(cp), _release(cp)
    sims = {d: SimDevice(mosquitto.port, d, garbage={bad}).start() for d in ids}
    try:
        # Everyone on r1 first: the baseline the later gates compare with.
        first = cp.call("POST", "/rollouts", {"release_id": r1, "waves": ["100%"],
                                              "gates": GATES})
        cp.wait_state(first["rollout_id"], "completed")

        sims["cam-5"].go_offline()
        wait_until(lambda: not cp.call("GET", "/devices/cam-5")["online"], STEP_S,
                   "cam-5 offline", interval=0.2)
        # Wave 2 cannot pass before the kill: its devices send windows of r2 only from
        # then on. (Sent at once, they let it pass in about a second: under load, before
        # the test saw it running.)
        for sim in sims.values():
            sim.hold(r2)
        started = json.loads(cp.loop.cli(
            "rollouts", "start", r2, "--waves", "1,50%,100%", "--json",
            *[a for k, v in GATES.items() for a in ("--gate", f"{k}={v}")]))
        ro = started["rollout_id"]
        assert [w["device_count"] for w in started["waves"]] == [1, 2, 3]
        for d in started["devices"]:
            if d["wave"] == 1:
                sims[d["device_id"]].let_go(r2)

        wait_until(lambda: cp.rollout(ro)["current_wave"] == 2, STEP_S, "wave 2", interval=0.1)
        cp.kill()  # mid-rollout: wave 2 is running
        for sim in sims.values():
            sim.let_go(r2)
        time.sleep(1.0)  # devices keep publishing into the broker meanwhile
        cp.start()
        view = cp.wait_state(ro, "in_progress")
        wait_until(lambda: cp.rollout(ro)["waves"][-1]["state"] == "passed", STEP_S,
                   "the last wave passes", interval=0.2)
        view = cp.rollout(ro)
        assert view["state"] == "in_progress"  # cam-5 is pending, not failed
        assert {d["device_id"]: d["state"] for d in view["devices"]}["cam-5"] == "pending"

        sims["cam-5"].start()  # back online: the retained desired state brings r2
        view = cp.wait_state(ro, "completed")
        assert all(d["state"] == "acknowledged" for d in view["devices"])
        assert sims["cam-5"].releases()[-1] == r2
        status = cp.loop.cli("rollouts", "status", ro, "--no-devices")
        assert "completed" in status and "class_shift" in status

        # A release whose model outputs garbage stops in the canary and rolls back.
        garbage = cp.call("POST", "/rollouts", {"release_id": bad, "gates": GATES})
        gro = garbage["rollout_id"]
        view = cp.wait_state(gro, "paused")
        assert view["waves"][0]["state"] == "rolled_back"
        failed = [g for g in view["waves"][0]["gates"] if g["status"] == "fail"]
        assert [g["name"] for g in failed] == ["class_shift"]
        canary = next(d["device_id"] for d in view["devices"] if d["wave"] == 1)
        wait_until(lambda: sims[canary].releases()[-2:] == [bad, r2], STEP_S,
                   "the canary reverted to r2", interval=0.2)
        for d in ids:
            if d != canary:
                assert bad not in sims[d].releases(), f"{d} received the garbage release"
        watch = cp.loop.cli  # `watch` exits 1 on a paused rollout and says what to do
        with pytest.raises(RuntimeError, match="rollouts resume"):
            watch("rollouts", "watch", gro, "--timeout", "10", "--interval", "0.2")
        cp.loop.cli("rollouts", "abort", gro, "--reason", "garbage model")
        assert cp.rollout(gro)["state"] == "aborted"
    finally:
        for sim in sims.values():
            sim.client.disconnect()
            sim.client.loop_stop()
            sim._stop.set()
