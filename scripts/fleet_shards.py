"""The simulated fleet across processes: one ``Fleet`` (one selector thread) per shard.

One Python thread keeps about 8,000 MQTT clients alive on a loaded 2-core machine; past
that their keepalives lapse and the broker drops them. Here each process drives a
contiguous shard of the fleet's device indices and copies its counters into shared
memory on every tick, so the parent reads the whole fleet's ``FleetStats`` as one.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import astuple, dataclass, fields
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from typing import Any

import httpx

from scripts.fleet_agents import Fleet, FleetStats, ManifestCache
from scripts.fleet_synth import SimConfig

_COUNTERS = len(fields(FleetStats))


@dataclass(frozen=True)
class _Shard:
    config: SimConfig
    mqtt_url: str
    api_url: str | None  # manifests of desired releases (None: the default profile)
    token: str | None
    devices: range
    slot: int


def _serve(shard: _Shard, counters: SynchronizedArray[Any], stop: Synchronized[int]) -> None:
    api = None if shard.api_url is None else httpx.Client(
        base_url=shard.api_url, timeout=120,
        headers={} if shard.token is None else {"Authorization": f"Bearer {shard.token}"})
    fleet = Fleet(shard.config, shard.mqtt_url, ManifestCache(api), shard=shard.devices)
    at = shard.slot * _COUNTERS

    def publish(stats: FleetStats) -> None:
        counters[at:at + _COUNTERS] = list(astuple(stats))

    done = threading.Event()

    def relay() -> None:  # Fleet.run watches a threading.Event
        # A polled flag, not a multiprocessing Event: setting one waits for every process
        # that waited on it to wake, and a shard that finished its windows has exited.
        while not stop.value:
            time.sleep(0.2)
        done.set()

    threading.Thread(target=relay, daemon=True).start()
    publish(fleet.run(done, on_tick=publish))


class ShardedFleet:
    """``processes`` simulator processes sharing ``config``'s devices between them."""

    def __init__(self, config: SimConfig, mqtt_url: str, processes: int,
                 api_url: str | None = None, token: str | None = None) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        ctx = mp.get_context("spawn")  # the parent runs threads: no fork
        self._counters = ctx.Array("q", processes * _COUNTERS)
        self._stop = ctx.Value("b", 0)
        step = -(-config.devices // processes)
        self._procs = [
            ctx.Process(target=_serve, name=f"fleet-shard-{i}", daemon=True, args=(
                _Shard(config, mqtt_url, api_url, token,
                       range(i * step, min((i + 1) * step, config.devices)), i),
                self._counters, self._stop))
            for i in range(processes)
        ]

    @property
    def pids(self) -> list[int]:
        """The simulator processes' ids (once running)."""
        return [proc.pid for proc in self._procs if proc.pid is not None]

    @property
    def stats(self) -> FleetStats:
        """The shards' counters added up (as of their last tick)."""
        values = self._counters[:]
        return FleetStats(*(sum(values[i::_COUNTERS]) for i in range(_COUNTERS)))

    def run(self, stop: threading.Event) -> FleetStats:
        """Run every shard until ``stop`` is set; then each says offline and disconnects."""
        for proc in self._procs:
            proc.start()
        stop.wait()
        self._stop.value = 1
        for proc in self._procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
        return self.stats
