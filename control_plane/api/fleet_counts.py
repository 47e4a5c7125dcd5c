"""The fleet page's device figures, counted at most once per ``max_age_s`` in a process.

Counting is one pass over the device table (``services.fleet_summary.fleet_counts``):
tens of milliseconds at 10,000 devices, most of ``GET /fleet`` when every request counted.
Here a request gets the figures as they were counted last:

- younger than ``max_age_s``: served as they are;
- younger than twice that: served, while one background thread counts again;
- older, or none yet: counted in the request (one request counts at a time; the others
  wait and take its figures).

So the page shows figures at most ``2 x max_age_s`` old (plus one count), at most
``max_age_s`` while it is loaded at least that often, and says how old they are
(``counted_at``, ``counts_age_s``). ``max_age_s`` 0 counts at every request. Each API
replica keeps its own figures: N replicas count at most N times per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..services.fleet_summary import FleetCounts

log = logging.getLogger(__name__)


class FleetCountsCache:
    """``count``'s result, kept for ``max_age_s`` seconds (``clock``: monotonic seconds)."""

    def __init__(self, count: Callable[[], FleetCounts], max_age_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._count = count
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()  # held by the one count under way
        self._last: tuple[float, FleetCounts] | None = None  # (clock when counted, figures)

    def get(self) -> FleetCounts:
        if self.max_age_s <= 0:
            return self._count()
        last = self._last
        if last is not None:
            age = self._clock() - last[0]
            if age < self.max_age_s:
                return last[1]
            if age < 2 * self.max_age_s:
                self._recount_in_background()
                return last[1]
        with self._lock:
            last = self._last
            if last is None or self._clock() - last[0] >= self.max_age_s:
                last = self._recount()
            return last[1]

    def _recount(self) -> tuple[float, FleetCounts]:
        started = self._clock()  # the figures' age includes the time counting took
        self._last = (started, self._count())
        return self._last

    def _recount_in_background(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a count is under way: its figures come soon enough
        threading.Thread(target=self._recount_then_release, name="fleet-counts",
                         daemon=True).start()

    def _recount_then_release(self) -> None:
        try:
            self._recount()
        except Exception as exc:  # the old figures stay; the next request counts again
            log.warning("fleet figures not counted: %s", exc)
        finally:
            self._lock.release()
