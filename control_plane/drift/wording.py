"""Drift verdicts in words, for alert messages and the CLI (standard library only, so the
CLI can import it without the analysis's numpy and SQL)."""

from __future__ import annotations

import math
from typing import Any


def driver_text(v: dict[str, Any]) -> str:
    """A verdict's driver in words: which feature, its statistic and its own level."""
    if v.get("feature") is None:
        return "no feature judged"
    where = f"device {v.get('device_id')} " if v.get("device_id") else ""
    if v.get("camera_id") is not None:
        where += f"camera {v['camera_id']} ({v['condition']}) "
    # The class mix (``class_mix.FEATURE``) is a CUSUM of a log likelihood ratio, not a PSI.
    name = "log likelihood ratio" if v["feature"] == "regions.mix" else "PSI"
    return (f"{where}{v['feature']} {name} {v['statistic']:.3f} against level "
            f"{v['level']:.3f} of the {v['reference']} reference")


def driver_brief(v: dict[str, Any]) -> str:
    """A verdict's driver for a table cell: "input.contrast 5.270 / 3.700 vs baseline
    (gate, day)", the statistic over its own level ("-": no feature judged)."""
    if v.get("feature") is None or v.get("statistic") is None or v.get("level") is None:
        return "-"
    where = ", ".join(str(x) for x in (v.get("camera_id"), v.get("condition")) if x)
    return (f"{v['feature']} {v['statistic']:.3f} / {v['level']:.3f} vs {v.get('reference')}"
            + (f" ({where})" if where else ""))


# A condition as the end of "needs 240 windows ...": ``any`` (agents that tag none) says nothing.
_IN_CONDITION = {"day": " by day", "dusk": " at dusk", "night": " at night", "ir": " in IR",
                 "rain": " in rain"}


def in_condition(condition: str) -> str:
    """" at night", " by day", ...; "" for ``any`` (windows without a condition)."""
    return _IN_CONDITION.get(condition, "" if condition == "any" else f" in {condition}")


def too_few_windows(condition: str, windows: int, needed: int, days: int | None) -> str:
    """Why no baseline: its camera × condition has fewer windows than a baseline is
    learned from (``days``: the whole days they span, when at least one: then when the
    rest arrive at the same rate)."""
    head = f"needs {needed:,} windows{in_condition(condition)}, has {windows:,}"
    if days is None or windows <= 0:
        return f"{head}: it fits by itself once they arrive"
    more = max(1, math.ceil((needed - windows) * days / windows))
    return (f"{head} over {days} days: it fits by itself in about {more} more "
            f"day{'s' if more > 1 else ''} at this rate (the hour check judges it meanwhile)")


def too_few_busy(condition: str, windows: int, busy: int, min_samples: int, needed: int
                 ) -> str:
    """Why no baseline: too few of its windows had enough crops to fit a level of any
    feature (``needed``: windows a level is fitted from)."""
    return (f"{busy:,} of its {windows:,} windows{in_condition(condition)} had "
            f"{min_samples} crops or more (drift.min_samples), {needed} needed to fit a "
            "level: it fits by itself once animals come by; for a camera that rarely sees "
            "any, lower drift.min_samples")


def not_healthy(release_id: str, device_id: str, reports: str) -> str:
    """Why no baseline: the release is not healthy on the device (``reports``: what it
    reports instead)."""
    return (f"waits for release {release_id} to report healthy on {device_id} (it reports "
            f"{reports}): it is learned by itself once it does; `parkwatch devices show "
            f"{device_id}` says why not")


def unfitted_text(unfitted: list[str], features: int, key: tuple[str, str, str],
                  min_replays: int) -> str | None:
    """Why a baseline judges some features not at all (``key``: device, camera,
    condition), and the fix; None when it judges all."""
    if not unfitted:
        return None
    device_id, camera_id, condition = key
    return (f"{len(unfitted)} of its {features} features have no level: fewer than "
            f"{min_replays} of its windows had enough samples of them to fit one, so they are "
            "not judged on this camera; to judge them, reset it while the camera is busier: "
            f"`parkwatch drift reset-baseline --device {device_id} --camera {camera_id} "
            f"--condition {condition}`")


def fit_failed(error: BaseException) -> str:
    """Why no baseline: fitting raised (a defect: the other cameras are judged)."""
    text = " ".join(f"{type(error).__name__}: {error}".split())[:300]
    return (f"fitting failed ({text}); the device's other cameras are judged as usual: "
            "report it with the control plane's log line 'drift baseline fit failed'")


__all__ = ["driver_brief", "driver_text", "fit_failed", "in_condition", "not_healthy",
           "too_few_busy", "too_few_windows", "unfitted_text"]
