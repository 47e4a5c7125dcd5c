"""A thread of the agent that dies takes the process with it, so systemd restarts it.

A real ``parkwatch agent run`` whose inference loop gets an exception injected (the
launcher below replaces one method before the CLI starts; nothing of the agent knows).
Without supervision the process stayed alive with a dead loop and ``/healthz`` at 503 for
ever, and ``Restart=always`` never fired.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.cli import EXIT_THREAD_DIED
from tests.agent_kit import Rig, looping_camera, make_release, running_rig
from tests.conftest import REPO_ROOT, Mosquitto

pytestmark = [pytest.mark.fault, pytest.mark.timeout(180)]

INJECT = """
import runpy, sys
import edge_agent.pipeline as pipeline

def _process(self, lane, frame, runtime):
    raise RuntimeError("injected fault in the inference loop")

pipeline.InferenceLoop._process = _process
sys.argv = ["parkwatch", "agent", "run", "--config", sys.argv[1]]
runpy.run_module("parkwatch_cli", run_name="__main__")
"""


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Rig]:
    with running_rig(tmp_path, mosquitto.url) as rig:
        yield rig


def test_a_dead_inference_thread_makes_the_process_exit_non_zero(rig: Rig) -> None:
    rig.server.add(make_release(rig.key, "r1"))
    rig.observer.desire(1, "r1")  # retained: the agent installs r1 as it connects
    config = rig.config(looping_camera(rig.tmp), window_seconds=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    proc = subprocess.Popen([sys.executable, "-c", INJECT, str(config)], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("the agent kept running with a dead inference thread:\n"
                             + out.decode()[-3000:]) from None
    text = out.decode()
    died = [line for line in text.splitlines() if "died" in line]
    print(f"injected: RuntimeError in the inference loop -> observed exit code "
          f"{proc.returncode}; {died[-1] if died else 'no line'}")
    assert proc.returncode == EXIT_THREAD_DIED, text[-3000:]
    assert died and "inference" in died[-1] and "injected fault" in died[-1]
    assert (rig.observer.last("status") or {}).get("state") == "offline", "it said goodbye"
