"""Pure logic of the API's limits: token buckets per device token, Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from control_plane.api.ratelimit import TokenBuckets
from protocols.api_errors import retry_after_seconds
from protocols.logs import redact


def test_buckets_allow_a_burst_then_the_hourly_rate_per_key() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_hour=60, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [None, None, None]
    wait = buckets.take("a")
    assert wait is not None and 59 <= wait <= 60  # one token a minute
    assert buckets.take("b") is None  # keys are independent
    now[0] += 60
    assert buckets.take("a") is None and buckets.take("a") is not None


def test_buckets_forget_the_least_recent_key_beyond_their_bound() -> None:
    buckets = TokenBuckets(per_hour=1, burst=1, max_keys=2, clock=lambda: 0.0)
    for key in ("a", "b", "c"):
        assert buckets.take(key) is None
    assert buckets.take("a") is None  # forgotten, so full again
    assert buckets.take("c") is not None


def test_retry_after_reads_seconds_and_dates_within_bounds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("7", 30) == 7
    assert retry_after_seconds(None, 30) == 30 and retry_after_seconds("soon", 30) == 30
    assert retry_after_seconds("999999", 30, cap=600) == 600
    date = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(date, 30, now=now) == 90
    assert retry_after_seconds(format_datetime(now - timedelta(hours=1), usegmt=True), 30,
                               now=now) == 0


def test_redact_masks_credentials_and_keeps_the_rest() -> None:
    line = ('127.0.0.1 - "GET /dashboard/?a=1&token=pw_abcdefghijklmnopqrstuvwxyz&b=2" 200 '
            "Authorization: Bearer s3cr3t mqtt://cam:hunter2@broker:1883 http://host:8000/x")
    assert redact(line) == ('127.0.0.1 - "GET /dashboard/?a=1&token=***&b=2" 200 '
                            "Authorization: Bearer *** mqtt://cam:***@broker:1883 "
                            "http://host:8000/x")
    assert redact("pw_abcdefghijkl in a message") == "pw_*** in a message"
