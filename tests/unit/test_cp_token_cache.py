"""``TokenCache``: when a verified token passes without a lookup, and when it is looked up
again (a lookup counter and a clock stand in for the store)."""

from __future__ import annotations

import pytest

from control_plane.api import token_cache
from control_plane.api.token_cache import TokenCache
from control_plane.errors import AuthError
from control_plane.services.auth import Principal

VIEWER = Principal(name="viewer", scopes=frozenset({"read"}), token_id=7)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lookup:
    """The store's answer: ``VIEWER``, or AuthError once ``revoked``."""

    def __init__(self) -> None:
        self.calls = 0
        self.revoked = False
        self.during: list[object] = []  # run inside the lookup (another thread's work)

    def __call__(self) -> Principal:
        self.calls += 1
        for act in self.during:
            act()  # type: ignore[operator]
        if self.revoked:
            raise AuthError("unknown or revoked token")
        return VIEWER


def test_a_verified_token_passes_without_a_lookup_within_its_age() -> None:
    clock, lookup = Clock(), Lookup()
    cache = TokenCache(5.0, clock)
    assert cache.principal("pw_a", lookup) is VIEWER
    clock.now += 4.9
    assert cache.principal("pw_a", lookup) is VIEWER
    assert lookup.calls == 1
    clock.now += 0.1  # five seconds after the lookup: looked up again
    assert cache.principal("pw_a", lookup) is VIEWER
    assert lookup.calls == 2


def test_each_token_is_kept_apart_and_a_failure_never_kept() -> None:
    lookup = Lookup()
    cache = TokenCache(5.0, Clock())
    cache.principal("pw_a", lookup)
    cache.principal("pw_b", lookup)
    assert lookup.calls == 2
    lookup.revoked = True
    for _ in range(2):
        with pytest.raises(AuthError):
            cache.principal("pw_c", lookup)
    assert lookup.calls == 4


def test_forget_all_makes_the_next_call_look_up_again() -> None:
    lookup = Lookup()
    cache = TokenCache(5.0, Clock())
    cache.principal("pw_a", lookup)
    lookup.revoked = True
    cache.forget_all()
    with pytest.raises(AuthError):
        cache.principal("pw_a", lookup)


def test_a_lookup_overtaken_by_a_revocation_is_not_kept() -> None:
    """A call that read the token's row before a revocation committed passes (it began
    first), but what it read must not be served after the revocation."""
    lookup = Lookup()
    cache = TokenCache(5.0, Clock())
    lookup.during = [cache.forget_all]
    assert cache.principal("pw_a", lookup) is VIEWER
    lookup.during = []
    cache.principal("pw_a", lookup)
    assert lookup.calls == 2


def test_max_age_zero_and_no_token_always_look_up() -> None:
    lookup = Lookup()
    for _ in range(2):
        TokenCache(0.0, Clock()).principal("pw_a", lookup)
    cache = TokenCache(5.0, Clock())
    for _ in range(2):
        cache.principal(None, lookup)
    assert lookup.calls == 4


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(token_cache, "MAX_KEPT", 3)
    clock, lookup = Clock(), Lookup()
    cache = TokenCache(5.0, clock)
    for i in range(3):
        cache.principal(f"pw_{i}", lookup)
    cache.principal("pw_new", lookup)  # full of fresh ones: looked up, not kept
    cache.principal("pw_new", lookup)
    assert lookup.calls == 5
    clock.now += 6  # the three expired: room again
    cache.principal("pw_new", lookup)
    cache.principal("pw_new", lookup)
    assert lookup.calls == 6
