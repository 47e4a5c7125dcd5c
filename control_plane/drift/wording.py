"""Drift verdicts in words, for alert messages and the CLI (standard library only, so the
CLI can import it without the analysis's numpy and SQL)."""

from __future__ import annotations

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


__all__ = ["driver_text"]
