"""Verdicts per camera × condition against production baselines, and the feature behind
each verdict (pure; the analysis passes the baselines it loaded).

A device's latest N windows are split by camera and condition; a camera × condition
with a baseline is drifted when K of its windows among them exceed a level of its
baseline (``baseline.judge``), or, with ``alert_rule = "merged"``, when its latest
windows merged exceed the level the baseline fitted for merged windows
(``baseline.judge_recent``), or when the mix of animals of its latest ``mix_windows``
windows has moved away from the baseline's (``baseline.judge_mix``, a CUSUM: a handful
of animals a minute needs several windows' evidence); one without a baseline yet is
``learning``. A verdict
always names its driver: the feature with the largest statistic-to-level ratio, with
its statistic and its own level, so a report never shows a figure from a feature that
could not have raised it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from ..store.models import DriftBaseline
from . import baseline as bl
from . import stats
from .summary import Summary

Key = tuple[str, str]


def _camera(
    profile: ReferenceProfile,
    key: Key,
    cameras: list[dict[str, Any]],
    base: DriftBaseline | None,
    settings: DriftSettings,
    pooled: list[dict[str, Any]],
) -> dict[str, Any]:
    out: dict[str, Any] = {"camera_id": key[0], "condition": key[1], "windows": len(cameras),
                           "estimated_accuracy": _estimate(profile, cameras, settings)}
    if base is None:
        return out | {"state": "learning", "holds": False, "drifted": 0, "judged": 0,
                      "driver": None}
    levels = bl.levels_of(base.levels)
    alpha = bl.window_alpha(settings.false_alarm_days, base.window_minutes, len(levels))
    kw: dict[str, Any] = {"alpha": alpha, "min_samples": settings.min_samples,
          "min_psi": settings.default_threshold.min_psi}
    judged = [v for v in (bl.judge(profile, base.counts, levels, c, **kw) for c in cameras)
              if v is not None]
    drifted = sum(1 for v in judged if v.drifted)
    fitted = any(lv.recent_scale is not None for lv in levels.values())
    if settings.alert_rule == "merged" and fitted:
        # The latest windows merged, at the level fitted for merged windows.
        top = bl.judge_recent(profile, base.counts, levels, cameras, **kw)
        holds = top is not None and top.drifted
    else:  # K single windows of the latest N, each over its own level
        holds = drifted >= settings.alert_drifted_windows
        top = max(judged, key=lambda v: v.ratio or 0.0, default=None)
    mix = bl.judge_mix(profile, base.counts, levels, pooled, alpha=alpha)
    holds, top = with_mix(holds, top, mix)
    return out | {
        "state": "active",
        "baseline_id": base.id,
        "baseline_version": base.version,
        "judged": len(judged),
        "drifted": drifted,
        "holds": holds,
        "alpha": alpha,
        "driver": None if top is None else {
            "feature": top.feature, "statistic": top.statistic, "level": top.level,
            "exceeded": top.drifted},
        "class_mix": mix_json(mix, len(pooled)),
    }


def with_mix(holds: bool, top: bl.Verdict | None, mix: bl.Verdict | None
             ) -> tuple[bool, bl.Verdict | None]:
    """A camera × condition's verdict with its class-mix test beside the PSI features':
    drifted when either holds, driven by the larger statistic-to-level ratio (the PSI
    feature's on a tie)."""
    if mix is None:
        return holds, top
    if top is None or (mix.ratio or 0.0) > (top.ratio or 0.0):
        top = mix
    return holds or mix.drifted, top


def mix_json(mix: bl.Verdict | None, windows: int) -> dict[str, Any] | None:
    """The class-mix test of a camera × condition as a report shows it."""
    if mix is None:
        return None
    return {"statistic": mix.statistic, "level": mix.level, "exceeded": mix.drifted,
            "windows": windows}


def _estimate(
    profile: ReferenceProfile, cameras: list[dict[str, Any]], settings: DriftSettings
) -> float | None:
    """The label-free estimate over these camera windows (None: too few frames)."""
    merged = Summary.empty(profile)
    for camera in cameras:
        merged.add_window({"cameras": [camera]})
    if merged.frames < settings.min_samples:
        return None
    return stats.estimated_accuracy(merged.confidence, profile.confidence.edges)


def baseline_holds(
    profile: ReferenceProfile,
    recent: list[dict[str, Any]],
    baselines: dict[Key, DriftBaseline],
    settings: DriftSettings,
) -> dict[str, Any]:
    """Each camera × condition of a device's latest windows (oldest first; the latest
    ``alert_windows`` of them, and the latest ``mix_windows`` for the class mix) against
    its baseline."""
    per_key, pooled = _by_key(recent[-settings.alert_windows:]), _by_key(
        recent[-settings.mix_windows:])
    cameras = [_camera(profile, key, cams, baselines.get(key), settings, pooled[key])
               for key, cams in sorted(per_key.items())]
    return {
        "cameras": cameras,
        "holds": any(c["holds"] for c in cameras),
        "k": settings.alert_drifted_windows,
        "n": settings.alert_windows,
    }


def _by_key(windows: list[dict[str, Any]]) -> dict[Key, list[dict[str, Any]]]:
    per_key: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for payload in windows:
        for camera in payload.get("cameras") or []:
            per_key[bl.camera_key(camera)].append(camera)
    return per_key


def skew_driver(stats: dict[str, Any]) -> dict[str, Any] | None:
    """The training comparison's feature closest to (or furthest past) its own level."""
    best: tuple[float, str, dict[str, Any]] | None = None
    for name, f in [*stats["features"].items(), ("classes", stats["classes"])]:
        if not f.get("judged") or not f.get("psi_alarm"):
            continue
        ratio = f["psi"] / f["psi_alarm"]
        if best is None or ratio > best[0]:
            best = (ratio, name, f)
    if best is None:
        return None
    _, name, f = best
    return {"feature": name, "statistic": f["psi"], "level": f["psi_alarm"],
            "exceeded": bool(f["drifted"])}


def verdict(stats: dict[str, Any], holds: bool) -> dict[str, Any]:
    """A report's headline: drifted or not, against which reference, and its driver."""
    base = stats.get("baseline") or {}
    ranked = [c for c in base.get("cameras", []) if c.get("driver")]
    if ranked:
        top = max(ranked, key=lambda c: (c["holds"], c["driver"]["statistic"]
                                         / max(c["driver"]["level"], 1e-12)))
        return {"drifted": holds, "reference": "baseline", "camera_id": top["camera_id"],
                "condition": top["condition"], **top["driver"]}
    driver = skew_driver(stats) or {}
    return {"drifted": holds, "reference": "training", "camera_id": None, "condition": None,
            **driver}


__all__ = ["baseline_holds", "mix_json", "skew_driver", "verdict", "with_mix"]
