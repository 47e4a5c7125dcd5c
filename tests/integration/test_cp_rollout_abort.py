"""Abort: no device that had not acknowledged the release gets it, online or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rollout_kit import Fleet, sqlite_fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    with sqlite_fleet(tmp_path, 4) as fleet:
        yield fleet


def test_abort_points_unacknowledged_devices_back_and_keeps_acknowledged_ones(
    fleet: Fleet,
) -> None:
    ro = fleet.start(waves=["2", "100%"], spread_label=None)
    first, second = sorted(fleet.pending(ro))
    fleet.ack(first)
    fleet.go_offline(second)  # it got r2 (retained) but is off before it could install it
    fleet.act(ro, "abort")
    assert fleet.out.releases_of(first) == ["r2"]  # acknowledged: keeps it
    assert fleet.out.releases_of(second) == ["r2", "r1"]  # the newest retained state: r1
    # It may have installed r2 before its report arrived: the revert allows the move back.
    assert [s.rollback for s in fleet.out.sent if s.device_id == second] == [False, True]
    assert fleet.desired(second) == "r1" and fleet.desired(first) == "r2"
    view = fleet.get(ro)
    assert view.state == "aborted"
    states = {d.device_id: d.state for d in view.devices}
    assert states[first] == "acknowledged" and states[second] == "rolled_back"
    others = set(fleet.ids) - {first, second}
    assert all(states[d] == "cancelled" and fleet.out.releases_of(d) == [] for d in others)
    assert fleet.audit("rollout.abort")[0].detail["reverted"] == 1
