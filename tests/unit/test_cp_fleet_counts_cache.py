"""``FleetCountsCache``: when the fleet page's figures are reused, recounted in the
background, or counted in the request (a counter and a clock stand in for the store)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from control_plane.api.fleet_counts import FleetCountsCache
from control_plane.services.fleet_summary import FleetCounts


class Counter:
    """Counts the calls; each count's figure is its number. ``gate`` holds a count."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.done = threading.Event()

    def __call__(self) -> FleetCounts:
        self.gate.wait(10)
        self.calls += 1
        self.done.set()
        return FleetCounts(devices=self.calls, online=0, cameras_up=0, cameras_not_up=0,
                           releases=(), shadows=(), counted_at=datetime.now(UTC))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_figures_are_reused_within_their_age() -> None:
    count, clock = Counter(), Clock()
    cache = FleetCountsCache(count, 5.0, clock)
    assert cache.get().devices == 1  # none yet: counted in the request
    clock.now += 4.9
    assert cache.get().devices == 1
    assert count.calls == 1


def test_stale_figures_are_served_while_one_background_count_runs() -> None:
    count, clock = Counter(), Clock()
    cache = FleetCountsCache(count, 5.0, clock)
    cache.get()
    clock.now += 6.0
    count.gate.clear()
    count.done.clear()
    assert cache.get().devices == 1  # served stale, not waiting for the count
    assert cache.get().devices == 1  # a count under way: no second one starts
    count.gate.set()
    assert count.done.wait(10)
    for _ in range(100):  # the background thread stores its figures right after counting
        if cache.get().devices == 2:
            break
        threading.Event().wait(0.01)
    assert cache.get().devices == 2
    assert count.calls == 2


def test_figures_older_than_twice_their_age_are_counted_in_the_request() -> None:
    count, clock = Counter(), Clock()
    cache = FleetCountsCache(count, 5.0, clock)
    cache.get()
    clock.now += 10.0
    assert cache.get().devices == 2


def test_age_zero_counts_every_request() -> None:
    count = Counter()
    cache = FleetCountsCache(count, 0.0, Clock())
    assert [cache.get().devices for _ in range(3)] == [1, 2, 3]


def test_a_failed_background_count_keeps_the_old_figures() -> None:
    clock, calls = Clock(), []

    def count() -> FleetCounts:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("store down")
        return FleetCounts(devices=7, online=0, cameras_up=0, cameras_not_up=0,
                           releases=(), shadows=(), counted_at=datetime.now(UTC))

    cache = FleetCountsCache(count, 5.0, clock)
    cache.get()
    clock.now += 6.0
    assert cache.get().devices == 7
    for _ in range(100):
        if len(calls) == 2 and cache._lock.acquire(blocking=False):
            cache._lock.release()
            break
        threading.Event().wait(0.01)
    assert cache.get().devices == 7  # stale, and a new background count may start
