"""The hour check's calibration (``drift.hours``, pure): a light a camera never showed at
an hour of the day, against a level from the history's own days replayed one against the
others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from control_plane.drift import hours

T0 = datetime(2026, 3, 1, tzinfo=UTC)
N, K, MIN_DAYS = 5, 3, 3


def regular(days: int, night: str = "night") -> list[tuple[datetime, str, int]]:
    """``days`` days of 60 windows an hour: night, dusk at 6 and 18, daylight between."""
    rows = []
    for d in range(days):
        for h in range(24):
            cond = "dusk" if h in (6, 18) else "day" if 7 <= h < 18 else night
            rows.append((T0 + timedelta(days=d, hours=h), cond, 60))
    return rows


def judge(rows: list[tuple[datetime, str, int]], hour: int, condition: str, windows: int = N
          ) -> hours.HourVerdict | None:
    return hours.judge(hours.History.of(rows), hour, condition, windows, n=N, k=K,
                       min_days=MIN_DAYS)


def test_ir_at_noon_is_new_night_at_night_and_rain_at_noon_are_not() -> None:
    rows = regular(5)
    stuck = judge(rows, 12, "ir")
    assert stuck is not None and stuck.drifted
    assert (stuck.statistic, stuck.level, stuck.history_days) == (N, K - 1, 5)
    for hour, condition in [(2, "night"), (12, "day"), (12, "rain"), (6, "dusk")]:
        v = judge(rows, hour, condition)
        assert v is not None and not v.drifted and v.statistic == 0, (hour, condition)


def test_k_windows_of_a_new_light_alarm_fewer_do_not() -> None:
    rows = regular(4)
    assert not judge(rows, 12, "ir", K - 1).drifted  # type: ignore[union-attr]
    assert judge(rows, 12, "ir", K).drifted  # type: ignore[union-attr]


def test_an_hour_either_side_is_this_hour() -> None:
    # Dusk comes at 18 in the history; at 19 (the seasons move it) it is not new, at 21 it is.
    rows = regular(4)
    assert not judge(rows, 19, "dusk").drifted  # type: ignore[union-attr]
    assert judge(rows, 21, "dusk").drifted  # type: ignore[union-attr]


def test_too_short_a_history_judges_nothing() -> None:
    assert judge(regular(MIN_DAYS - 1), 12, "ir") is None
    assert judge(regular(MIN_DAYS), 12, "ir") is not None


def test_level_rises_with_the_new_lights_the_history_itself_shows() -> None:
    # One day of the history was dark at noon for 4 windows (a storm tagged dusk): replayed
    # against the other days that is new, so the level rises to 4 and a 4-window dark
    # spell no longer alarms; a 5-window one does.
    rows = [*regular(6), (T0 + timedelta(days=2, hours=12), "dusk", 4)]
    history = hours.History.of(rows)
    assert hours.level(history, N, K, MIN_DAYS) == 4
    # With that day in the history dusk at noon is no longer new either; IR is.
    v = hours.judge(history, 12, "ir", N, n=N, k=K, min_days=MIN_DAYS)
    assert v is not None and v.drifted and v.level == 4


def test_an_irregular_history_never_alarms() -> None:
    # Every day a different light at noon for a whole hour: no light is new enough to
    # trust, the level is N and nothing exceeds it.
    lights = ["day", "dusk", "night", "ir", "day", "dusk"]
    rows = [(T0 + timedelta(days=d, hours=h), lights[d] if h == 12 else "day", 60)
            for d in range(6) for h in range(24)]
    history = hours.History.of(rows)
    assert hours.level(history, N, K, MIN_DAYS) == N
    v = hours.judge(history, 3, "ir", N, n=N, k=K, min_days=MIN_DAYS)
    assert v is not None and not v.drifted


def test_replayed_days_of_a_regular_camera_raise_nothing() -> None:
    # Leave each day out and judge its every hour against the others: no false alarm.
    rows = regular(7, night="ir")
    for d in range(7):
        mine = [r for r in rows if r[0].date() == (T0 + timedelta(days=d)).date()]
        others = hours.History.of([r for r in rows if r not in mine])
        for bucket, condition, _ in mine:
            v = hours.judge(others, bucket.hour, condition, N, n=N, k=K, min_days=MIN_DAYS)
            assert v is not None and not v.drifted
