"""SIGKILL a real ``parkwatch agent run`` at every named point of a model download and
swap; each restart must come back on a verified model (the old or the new one) and then
converge on the new one.

The kill points are the fault-injection hook of ``edge_agent.releases``
(``PARKWATCH_AGENT_CRASH_AT``): the process SIGKILLs itself on reaching the point, so
every stage is hit exactly, with no timing luck. After each recovery the agent is
SIGKILLed once more from outside, while it serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_agent.releases import CRASH_ENV, CRASH_POINTS
from tests.agent_kit import Rig, looping_camera, make_release, running_rig, wait_until
from tests.agent_models import build_model
from tests.conftest import REPO_ROOT, Mosquitto

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.fault]


def start_agent(config: Path, log: Path, crash_at: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    if crash_at:
        env[CRASH_ENV] = crash_at
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkwatch_cli", "agent", "run", "--config", str(config)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def reports_since(rig: Rig, mark: int) -> list[dict[str, Any]]:
    with rig.observer._lock:
        return [m for k, m in rig.observer.messages[mark:] if k == "reported"]


def after_last_will(rig: Rig, since: int) -> int:
    """The observer's mark once the Last Will of the agent started after ``since`` has
    arrived (it was killed).

    The broker forwards what the process published before it died ahead of the Will it
    sends when the socket closes; a mark taken as soon as the process is reaped can fall
    before those last reports, which would then pass for the restarted agent's first.
    """
    def will() -> bool:
        with rig.observer._lock:
            statuses = [m for k, m in rig.observer.messages[since:] if k == "status"]
        sessions = {m.get("session") for m in statuses if m.get("state") == "online"}
        return any(m.get("state") == "offline" and m.get("session") in sessions
                   for m in statuses)
    wait_until(will, 30, "the killed agent's Last Will")
    with rig.observer._lock:
        return len(rig.observer.messages)


def verified_on_disk(data: Path, shas: dict[str, str]) -> str:
    """The pointer parses and names an installed release whose model hashes right."""
    pointer = json.loads((data / "releases" / "active.json").read_text())
    current = pointer["current"]
    model = (data / "releases" / current / "model.onnx").read_bytes()
    assert hashlib.sha256(model).hexdigest() == shas[current], f"{current} is corrupt"
    return str(current)


def test_sigkill_at_every_point_of_a_swap_restarts_on_a_verified_model(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    with running_rig(tmp_path, mosquitto.url) as rig:
        # Big enough (about 300 kB) that the download takes several chunks.
        releases = [make_release(rig.key, f"r{i}", build_model(bias=0.01 * i, pad_bytes=300_000))
                    for i in range(len(CRASH_POINTS) + 1)]
        for release in releases:
            rig.server.add(release)
        shas = {r.release_id: r.sha256 for r in releases}
        config = rig.config(looping_camera(tmp_path), window_seconds=1)
        log = tmp_path / "agent.log"
        data = tmp_path / "data"

        def serving(release_id: str, mark: int) -> None:
            wait_until(lambda: any((r.get("active") or {}).get("release_id") == release_id
                                   and r["active"]["stage"] == "healthy"
                                   for r in reports_since(rig, mark)), 60,
                       f"{release_id} healthy; log tail {log.read_text()[-2000:]}")

        rig.observer.desire(0, "r0")
        proc = start_agent(config, log, None)
        serving("r0", 0)
        kill(proc)
        outcomes: dict[str, str] = {}
        for revision, point in enumerate(CRASH_POINTS, start=1):
            old, new = f"r{revision - 1}", f"r{revision}"
            rig.observer.desire(revision, new)
            started = len(rig.observer.messages)
            proc = start_agent(config, log, point)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                kill(proc)
                raise AssertionError(f"crash point {point} was never reached") from None
            assert proc.returncode == -signal.SIGKILL, (point, log.read_text()[-2000:])

            on_disk = verified_on_disk(data, shas)
            assert on_disk in (old, new), (point, on_disk)
            mark = after_last_will(rig, started)
            proc = start_agent(config, log, None)
            try:
                boot = wait_until(lambda m=mark: reports_since(rig, m), 30, "first report")[0]
                active = boot["active"]
                assert active is not None, f"no model after a kill at {point}"
                assert active["release_id"] in (old, new) and active["stage"] == "warmed", \
                    (point, active)
                assert active["release_id"] == on_disk
                outcomes[point] = active["release_id"]
                serving(new, mark)  # and it converges on the new release
                assert verified_on_disk(data, shas) == new
            finally:
                kill(proc)  # a second, outside SIGKILL, while serving
        # Until the pointer rename the old model comes back, from it on the new one.
        print(f"injected: SIGKILL at {len(CRASH_POINTS)} points of download and swap -> "
              f"observed restart on {outcomes}")
        flip = CRASH_POINTS.index("pointer_renamed")
        assert outcomes == {point: f"r{i + (i >= flip)}" for i, point in enumerate(CRASH_POINTS)}
        # No leftovers of interrupted installs or pointer writes once it ran again.
        assert not list((data / "releases").glob(".*.tmp"))
