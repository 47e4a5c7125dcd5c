"""What the end-to-end tests share: one parkwatch installation on a real Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.loop import Loop
from tests.conftest import Mosquitto


@pytest.fixture
def window_seconds() -> float:
    """The agents' telemetry window; a test module overrides it with its own fixture."""
    return 2.0


@pytest.fixture
def loop(tmp_path: Path, mosquitto: Mosquitto, window_seconds: float) -> Iterator[Loop]:
    """A control plane and its agents in ``tmp_path``; every process stopped after, and the
    tail of each one's log printed (what a failure needs)."""
    loop = Loop(tmp_path / "loop", mqtt_url=mosquitto.url, window_seconds=window_seconds)
    try:
        yield loop
    finally:
        loop.stop_all()
        for proc in loop.procs.values():
            print(f"--- {proc.name} (exit {proc.popen.returncode})\n{proc.tail(15)}")
