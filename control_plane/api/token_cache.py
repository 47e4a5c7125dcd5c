"""Verified API tokens, kept a few seconds per process so a burst of calls looks one up once.

Every authenticated call read its token's row: one round trip to the database of the two
or three a small read makes, each a wait for a core on a busy host. Here a token that was
valid at most ``max_age_s`` seconds ago passes without the lookup (keyed by its hash; an
unknown or revoked token is never kept, so failures always reach the store and the
failure limit). A revocation through this process forgets every kept token at once
(``forget_all``); one made elsewhere (another API replica, `parkwatch tokens revoke` on the
store) takes effect here within ``max_age_s``. ``max_age_s`` 0 looks up every call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..services.auth import Principal, hash_token

MAX_KEPT = 20_000  # a token per device of a large fleet, plus people's


class TokenCache:
    """Principals of recently verified tokens (``clock``: monotonic seconds)."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, Principal]] = {}  # token hash -> (verified, who)
        self._generation = 0  # bumped by forget_all: a lookup begun before must not be kept

    def principal(self, token: str | None, lookup: Callable[[], Principal]) -> Principal:
        """``token``'s principal as verified within ``max_age_s``, else ``lookup()``'s
        (which raises for an unknown or revoked token: nothing is kept then)."""
        if self.max_age_s <= 0 or not token:
            return lookup()
        key = hash_token(token)
        now = self._clock()
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and now - kept[0] < self.max_age_s:
                return kept[1]
            generation = self._generation
        principal = lookup()
        with self._lock:
            if generation == self._generation:  # no revocation since the lookup began
                if len(self._kept) >= MAX_KEPT:
                    self._drop_expired(now)
                if len(self._kept) < MAX_KEPT:
                    self._kept[key] = (now, principal)
        return principal

    def forget_all(self) -> None:
        """After a revocation: every call looks its token up again."""
        with self._lock:
            self._kept.clear()
            self._generation += 1

    def _drop_expired(self, now: float) -> None:
        self._kept = {k: v for k, v in self._kept.items() if now - v[0] < self.max_age_s}
