"""Rate limiting of authentication failures, per client address.

A client that sends ``max_failures`` missing/unknown/revoked tokens within
``window_seconds`` is answered 429 with ``Retry-After`` on every authenticated
route until the oldest of those failures leaves the window. Checked before the
token lookup, so a guessing client costs no store query. Behind a reverse proxy
every client shares the proxy's address: rate-limit there instead (the
``X-Forwarded-For`` header is not trusted here, since a client can forge it).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

log = logging.getLogger(__name__)


class AuthFailureLimiter:
    """Sliding-window failure counter per address; memory bounded by ``max_clients``."""

    def __init__(
        self,
        max_failures: int = 20,
        window_seconds: float = 60.0,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_seconds <= 0:
            raise ValueError("max_failures must be >= 1 and window_seconds > 0")
        self.max_failures = max_failures
        self.window = window_seconds
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> float | None:
        """Seconds until ``client`` may try again, or None when it is not limited."""
        with self._lock:
            now = self._clock()
            times = self._recent(client, now)
            if times is None or len(times) < self.max_failures:
                return None
            return times[-self.max_failures] + self.window - now

    def failed(self, client: str) -> None:
        """Record one authentication failure of ``client``."""
        with self._lock:
            now = self._clock()
            times = self._recent(client, now) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)  # forget the least recently failing
            if len(times) == self.max_failures:
                log.warning(
                    "authentication failures from one client: limiting it",
                    extra={"client": client, "window_seconds": self.window},
                )


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1 (RFC 9110 delay-seconds)."""
    return str(max(1, math.ceil(seconds)))


class TokenBuckets:
    """One token bucket per key (a device token): ``per_hour`` on average, ``burst`` at once;
    memory bounded by ``max_keys`` (the least recently used bucket is forgotten, i.e. full)."""

    def __init__(
        self,
        per_hour: int,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_hour < 1 or burst < 1:
            raise ValueError("per_hour and burst must be >= 1")
        self.per_hour = per_hour
        self.burst = burst
        self.max_keys = max_keys
        self._rate = per_hour / 3600.0
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str) -> float | None:
        """Spend one token of ``key``: None when there was one, else the seconds to wait."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self._rate
            self._buckets[key] = (tokens - 1.0, now)
            self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return None
