"""Long-running parts behind one small interface: start, stop, health.

- ``Service``: what every long-running part offers: the MQTT adapter, the embedded
  broker, and the periodic tasks (rollout engine, drift analysis, retraining rounds);
- ``PeriodicTask``: runs a function every ``interval_s`` on its own thread (or on the
  caller's, ``run_until``); a failed run is logged, shown by ``health`` and retried at
  the next tick, never the end of the task. A singleton job (one process of the replicas
  sharing a store runs it) holds a ``Lease`` (``store/leases.py``): a standby tries to
  take it at every tick and runs nothing meanwhile;
- ``Services``: starts parts in order, stops them in reverse, reports their health;
- ``run_until_signalled``: the one place a process waits for SIGTERM or SIGINT.

Threads here are daemons: a process that must not lose work stops its services first.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


class Service(Protocol):
    """A long-running part of a process."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> Health: ...


class Lease(Protocol):
    """Leadership of a singleton job among the processes that share a store."""

    def hold(self) -> bool: ...

    def release(self) -> None: ...


class PeriodicTask:
    """Calls ``run`` every ``interval_s`` seconds (the first call after one interval, or at
    once with ``run_at_start``) until stopped; with a ``lease``, only while holding it."""

    def __init__(self, name: str, interval_s: float, run: Callable[[], object], *,
                 run_at_start: bool = False, lease: Lease | None = None) -> None:
        self.name = name
        self.interval_s = interval_s
        self._run = run
        self._run_at_start = run_at_start
        self.lease = lease
        self.tries = 0  # ticks, run or not: a standby's takeover is counted in these
        self.leader_since: int | None = None  # the tick at which the lease was taken
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # runs that returned without an error
        self._last_ok: float | None = None
        self._last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_until, args=(self._stop,),
                                        name=self.name, daemon=True)
        self._thread.start()
        log.info("%s started", self.name, extra={"interval_s": self.interval_s})

    def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking; a run in progress may take ``timeout`` seconds to finish."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=timeout)
        if self.lease is not None:
            self.lease.release()
            self.leader_since = None

    def run_until(self, stop: threading.Event) -> None:
        """Tick on this thread until ``stop`` is set."""
        if self._run_at_start and not stop.is_set():
            self.run_once()
        while not stop.wait(self.interval_s):
            self.run_once()

    def run_once(self) -> bool:
        """One run now (none on a standby); False (and logged) if it raised."""
        self.tries += 1
        if self.lease is not None:
            if not self.lease.hold():
                self.leader_since = None
                return True
            if self.leader_since is None:
                self.leader_since = self.tries
        try:
            self._run()
        except Exception as exc:  # a store outage or a bad row must not end the task
            log.exception("%s failed; retrying in %g s", self.name, self.interval_s)
            self._last_error = f"{type(exc).__name__}: {exc}"[:300]
            return False
        self.runs += 1
        self._last_ok, self._last_error = time.monotonic(), None
        return True

    def health(self) -> Health:
        if self._thread is not None and not self._thread.is_alive():
            return Health(False, "stopped")
        if self.lease is not None and self.tries and self.leader_since is None:
            return Health(True, f"standby: another process holds the lease "
                                f"(tried {self.tries} times)")
        if self._last_error is not None:
            return Health(False, f"last run failed: {self._last_error}")
        if self.lease is not None and self.leader_since is not None:
            return Health(True, f"leader since try {self.leader_since}; "
                                f"{self._since_last_ok()}")
        return Health(True, self._since_last_ok())

    def _since_last_ok(self) -> str:
        if self._last_ok is None:
            return f"no run yet (every {self.interval_s:g} s)"
        return f"last run {time.monotonic() - self._last_ok:.0f} s ago"


S = TypeVar("S", bound=Service)


class Services:
    """The services a process runs: started in order, stopped in reverse."""

    def __init__(self) -> None:
        self._started: list[Service] = []

    def start(self, service: S) -> S:
        service.start()
        self._started.append(service)
        return service

    def stop(self) -> None:
        """Stop every started service, the last first; one failing to stop is logged."""
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except Exception:
                log.exception("%s did not stop cleanly", service.name)

    def health(self) -> dict[str, Health]:
        return {s.name: s.health() for s in self._started}


def run_until_signalled(name: str, stop: threading.Event | None = None,
                        main: PeriodicTask | None = None) -> None:
    """Block until SIGTERM or SIGINT (or ``stop`` is set), running ``main``'s ticks on this
    thread meanwhile. Handlers are installed on the main thread only (tests run a process
    on another thread and set ``stop``) and restored on return."""
    stop = stop or threading.Event()
    with _signals_set(stop, name):
        if main is None:
            stop.wait()
        else:
            main.run_until(stop)


@contextmanager
def _signals_set(stop: threading.Event, name: str) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s stopping", name, extra={"signal": signum})
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


__all__ = ["Health", "Lease", "PeriodicTask", "Service", "Services", "run_until_signalled"]
