"""A throttled download is not a failed install: a real agent (real Mosquitto, real ONNX
model) whose release server answers 429 with Retry-After more times than the agent retries a
failed download waits as asked each time, then installs and activates the release."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.release_install import DOWNLOAD_RETRIES
from tests.agent_kit import Rig, agent_log_lines, looping_camera, make_release, running_rig
from tests.conftest import Mosquitto

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


@pytest.mark.fault
def test_agent_honours_retry_after_and_installs_once_let_in(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    throttled = DOWNLOAD_RETRIES + 2  # a failure count that would have failed the install
    rig.server.throttle = throttled
    rig.start_agent(rig.config(looping_camera(rig.tmp), window_seconds=1))
    with agent_log_lines() as lines:
        rig.observer.desire(1, "r1")
        rig.wait_healthy("r1", timeout=60)
    statuses = [status for _path, _range, status in rig.server.requests]
    assert statuses.count(429) == throttled, statuses
    waits = [line["msg"] for line in lines if "throttled; waiting" in line["msg"]]
    assert len(waits) == throttled and all("waiting 1 s as asked" in w for w in waits), waits
    kinds = [e["kind"] for e in rig.observer.of("events")]
    assert "activation_failed" not in kinds and "activated" in kinds, kinds
    print(f"injected: {throttled} answers 429 (Retry-After 1) before the manifest -> observed "
          f"{len(waits)} waits as asked, then {statuses[throttled:]} and r1 healthy")
