"""Wave planning: which devices go in which wave, and how fast. Pure functions, no store.

Wave steps are cumulative: ``["1", "10%", "50%", "100%"]`` over 40 devices gives waves
of 1, 3, 16 and 20 devices (1, 4, 20, 40 in total). A step that adds nobody is dropped,
and a plan that stops short of every target gets a final wave with the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import InvalidRequestError


@dataclass(frozen=True)
class Candidate:
    """What wave ordering needs to know about one targeted device."""

    device_id: str
    online: bool
    labels: Mapping[str, str]


def cumulative_sizes(steps: Sequence[str], total: int) -> list[int]:
    """Devices covered after each wave, strictly increasing and ending at ``total``."""
    if total < 1:
        raise InvalidRequestError("a rollout needs at least one target device")
    if not steps:
        raise InvalidRequestError("waves is empty: give steps like 1,10%,50%,100%")
    sizes: list[int] = []
    for step in steps:
        if step.endswith("%"):
            share = float(step[:-1])
            if not 0 < share <= 100:
                raise InvalidRequestError(f"wave step {step!r}: a share must be in (0, 100]%")
            count = math.ceil(total * share / 100)
        else:
            try:
                count = int(step)
            except ValueError:
                raise InvalidRequestError(
                    f"wave step {step!r} is neither a device count (5) nor a share (10%)"
                ) from None
            if count < 1:
                raise InvalidRequestError(f"wave step {step!r}: a count must be at least 1")
        count = min(count, total)
        if sizes and count < sizes[-1]:
            raise InvalidRequestError(
                f"wave step {step!r} covers fewer devices than the one before: steps are "
                "cumulative, so list them in increasing order"
            )
        if not sizes or count > sizes[-1]:
            sizes.append(count)
    if sizes[-1] < total:
        sizes.append(total)
    return sizes


def order_for_waves(candidates: Sequence[Candidate], spread_label: str | None) -> list[str]:
    """Devices in the order waves take them: online ones first (a canary that is offline
    tells nothing), and round-robin across the values of ``spread_label`` (parks), so the
    first waves see as many parks as they have devices."""
    def bucket_key(c: Candidate) -> str:
        return c.labels.get(spread_label, "") if spread_label else ""

    ordered: list[str] = []
    for online in (True, False):
        buckets: dict[str, list[str]] = {}
        for c in sorted(candidates, key=lambda c: c.device_id):
            if c.online == online:
                buckets.setdefault(bucket_key(c), []).append(c.device_id)
        queues = [buckets[k] for k in sorted(buckets)]
        depth = max((len(q) for q in queues), default=0)
        for i in range(depth):
            ordered.extend(q[i] for q in queues if i < len(q))
    return ordered


def assign_waves(
    candidates: Sequence[Candidate], steps: Sequence[str], spread_label: str | None
) -> dict[str, int]:
    """Device id -> wave number (1-based)."""
    ordered = order_for_waves(candidates, spread_label)
    sizes = cumulative_sizes(steps, len(ordered))
    waves: dict[str, int] = {}
    start = 0
    for number, end in enumerate(sizes, start=1):
        for device_id in ordered[start:end]:
            waves[device_id] = number
        start = end
    return waves


def release_budget(
    rate_per_minute: int | None, elapsed_s: float, released: int, waiting: int
) -> int:
    """How many more of ``waiting`` devices may get the release now, when ``released``
    went out since the wave started ``elapsed_s`` ago: a second's worth (at least one) at
    once, then the rate."""
    if rate_per_minute is None:
        return waiting
    allowed = math.ceil(rate_per_minute * (max(elapsed_s, 0.0) + 1.0) / 60.0)
    return max(0, min(waiting, allowed - released))
