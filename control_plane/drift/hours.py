"""A light the camera has never shown at this hour: IR by day, night at noon (pure).

Baselines are per camera x condition, so a condition a camera has no baseline for is
``learning`` and gets no verdict: that is what keeps nightfall quiet. It also keeps an IR
filter stuck by day quiet on a camera without an illuminator (its ``ir`` windows are a
new condition). What tells the two apart is the hour: every evening brings night at
the hours night always came, an IR filter stuck at noon brings a light the camera has
never shown at noon. This check compares the light of a camera's latest windows with the
lights its history showed at the same hour of the day (one hour either side, so the
seasons' drift of dusk by a few minutes a day stays inside it).

Light is the agent's condition with weather folded in: ``rain`` is daylight (a rainy
morning is no new light, and rain itself is judged by its own baseline once learnt).

Its level comes from the history's own days, like a baseline's from its windows: every
day of the history is replayed against the other days (leave one day out), and each hour
of it that shows a light the other days never showed at that hour counts its windows (at
most N, the windows an alert looks at). The level is the largest such count, and at
least K - 1, so with a regular history a camera alarms after K windows of a new light, as
K of N windows over a baseline's level do. A history whose replays show new lights in N
or more windows of an hour (a camera whose light is irregular) has a level of N: such a
camera is never drifted by this check.

With D days of history the replays see a new light on at most 1 in D days when there
is none: the level cannot be set for 1 false alarm in ``false_alarm_days`` the way a
baseline's is, only checked against what D days showed. ``hour_min_days`` days of history
at the hour are needed before a window is judged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

FEATURE = "condition.hour"
LIGHT = {"rain": "day"}  # weather, not light
SPREAD = 1  # hours either side of the window's hour that count as "this hour"


def light(condition: str) -> str:
    """The light a condition stands for (rain is daylight)."""
    return LIGHT.get(condition, condition)


@dataclass
class History:
    """A camera's windows by day, hour of the day and light (from hourly rollups)."""

    windows: dict[tuple[date, int, str], int] = field(default_factory=dict)
    # Derived: per (hour, light) the days that showed it, per hour the days with windows.
    _seen: dict[tuple[int, str], set[date]] = field(default_factory=dict)
    _days: dict[int, set[date]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[tuple[datetime, str, int]]) -> History:
        """From (hour bucket, condition, windows) rows: a bucket ``b`` holds the windows
        received in (b, b + 1 h], so its hour of the day is ``b.hour``."""
        out = cls()
        for bucket, condition, windows in rows:
            if windows <= 0:
                continue
            key = (bucket.date(), bucket.hour, light(condition))
            out.windows[key] = out.windows.get(key, 0) + int(windows)
        seen: dict[tuple[int, str], set[date]] = defaultdict(set)
        days: dict[int, set[date]] = defaultdict(set)
        for day, hour, lit in out.windows:
            for h in _around(hour):
                seen[(h, lit)].add(day)
                days[h].add(day)
        out._seen, out._days = dict(seen), dict(days)
        return out

    def days_at(self, hour: int, without: date | None = None) -> int:
        """Days of history with windows at this hour (either side included)."""
        days = self._days.get(hour, set())
        return len(days) - (1 if without in days else 0)

    def novel(self, hour: int, lit: str, without: date | None = None) -> bool:
        """No day of the history (but ``without``) showed this light at this hour."""
        return not (self._seen.get((hour, lit), set()) - {without})


def _around(hour: int) -> list[int]:
    return [(hour + d) % 24 for d in range(-SPREAD, SPREAD + 1)]


def level(history: History, n: int, k: int, min_days: int) -> int:
    """The most windows of an hour (at most ``n``) that showed a light new at that hour
    when each day of the history is replayed against the others, and at least ``k - 1``.
    Replays with fewer than ``min_days - 1`` other days at that hour are not counted
    (they would see everything as new)."""
    most = max(k - 1, 0)
    for (day, hour, lit), windows in history.windows.items():
        if history.days_at(hour, day) < max(min_days - 1, 1):
            continue
        if history.novel(hour, lit, day):
            most = max(most, min(windows, n))
    return min(most, n)


@dataclass(frozen=True)
class HourVerdict:
    """A camera x condition's latest windows against the lights of its history at the hour."""

    drifted: bool
    statistic: float  # windows among the latest N in a light never shown at this hour
    level: float
    history_days: int

    def driver(self) -> dict[str, object]:
        return {"feature": FEATURE, "statistic": self.statistic, "level": self.level,
                "exceeded": self.drifted}


def judge(history: History, hour: int, condition: str, windows: int, *, n: int, k: int,
          min_days: int) -> HourVerdict | None:
    """``windows`` windows of ``condition`` among a camera's latest, at ``hour`` of the day
    (the control plane's clock, UTC). None: fewer than ``min_days`` days of history at
    that hour, nothing to compare with."""
    days = history.days_at(hour)
    if days < min_days:
        return None
    new = min(windows, n) if history.novel(hour, light(condition)) else 0
    lv = level(history, n, k, min_days)
    return HourVerdict(new > lv, float(new), float(lv), days)


__all__ = ["FEATURE", "History", "HourVerdict", "judge", "level", "light"]
