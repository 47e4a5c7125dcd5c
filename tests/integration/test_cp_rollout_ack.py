"""Only a smoke-tested model acknowledges: a device that reports its model ``loaded``
(built, not yet smoke-tested) holds its wave even when the wave needs no telemetry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.config.rollout_policy import GatePolicy
from control_plane.testing import reported_state
from tests.rollout_kit import Fleet, sqlite_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with sqlite_fleet(tmp_path, 2) as fleet:
        yield fleet


def test_loaded_is_not_an_acknowledgement_even_without_telemetry_gates(fleet: Fleet) -> None:
    gates = GatePolicy(ack_timeout_s=60, offline_deadline_s=600, min_windows=0,
                       health_timeout_s=120)
    ro = fleet.start(waves=["1", "100%"], spread_label=None, gates=gates)
    canary = fleet.pending(ro)[0]
    revision = next(d.revision for d in fleet.get(ro).devices if d.device_id == canary)
    assert fleet.report(canary, reported_state(canary, "r2", "loaded", revision)) is None
    fleet.tick(ro)
    assert fleet.get(ro).current_wave == 1 and fleet.pending(ro) == [canary]
    assert fleet.report(canary, reported_state(canary, "r2", "warmed", revision)) \
        == "acknowledged"
    fleet.tick(ro)
    assert fleet.get(ro).current_wave == 2
