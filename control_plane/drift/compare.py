"""Compare a merged summary with the reference profile: every statistic with its alarm level."""

from __future__ import annotations

from typing import Any

import numpy as np

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from . import stats
from .summary import Summary, features


def _feature(
    name: str, ref: Any, cur: Any, settings: DriftSettings, min_samples: int
) -> dict[str, Any]:
    r, c = np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)
    n, m = float(r.sum()), float(c.sum())
    out: dict[str, Any] = {"samples": int(m), "judged": m >= min_samples and n > 0}
    if not out["judged"]:
        out["drifted"] = False
        return out
    t = settings.threshold(name)
    bins = int(r.size)
    out |= {
        "psi": stats.psi(r, c),
        "psi_alarm": max(stats.psi_alarm_level(n, m, bins, t.alpha), t.min_psi),
        "js": stats.js_distance(r, c),
        "js_alarm": stats.js_alarm_level(n, m, bins, t.alpha),
        "ks": stats.ks_binned(r, c),
        "ks_alarm": stats.ks_alarm_level(n, m, t.alpha),
    }
    out["drifted"] = out["psi"] > out["psi_alarm"]
    return out


def _classes(
    profile: ReferenceProfile, summary: Summary, settings: DriftSettings, min_samples: int
) -> dict[str, Any]:
    ref = np.array([profile.class_counts[label] for label in summary.labels], dtype=np.float64)
    cur = summary.class_counts
    out = _feature("classes", ref, cur, settings, min_samples)
    if not out["judged"]:
        return out
    t = settings.threshold("classes")
    chi = stats.chi_square(ref, cur)
    out |= {
        "chi2": chi.statistic,
        "chi2_p": chi.p_value,
        "chi2_alarm": stats.chi_square_alarm_level(chi.dof, t.alpha),
        "reference_share": dict(zip(summary.labels, (ref / ref.sum()).tolist(), strict=True)),
        "share": dict(zip(summary.labels, (cur / cur.sum()).tolist(), strict=True)),
    }
    # Both must agree: chi-square alone flags tiny class shifts on huge samples.
    out["drifted"] = chi.p_value < t.alpha and out["psi"] > t.min_psi
    return out


def reference_accuracy(profile: ReferenceProfile) -> float | None:
    """The estimate on the training reference; None for a profile with no confidence counts
    (a degenerate profile has no accuracy to compare with, and must not stop the analysis)."""
    if sum(profile.confidence.counts) <= 0:
        return None
    return stats.estimated_accuracy(profile.confidence.counts, profile.confidence.edges)


def accuracy(
    profile: ReferenceProfile, summary: Summary, settings: DriftSettings
) -> dict[str, Any]:
    """The label-free estimate of ``summary`` beside the reference's, and whether it dropped."""
    ref_acc = reference_accuracy(profile)
    judged = summary.frames >= settings.min_samples and ref_acc is not None
    est = (
        stats.estimated_accuracy(summary.confidence, profile.confidence.edges) if judged else None
    )
    drop = None if est is None or ref_acc is None else ref_acc - est
    return {
        "reference_accuracy": ref_acc,
        "estimated_accuracy": est,
        "accuracy_drop": drop,
        "accuracy_dropped": drop is not None and drop > settings.max_accuracy_drop,
    }


def compare(
    profile: ReferenceProfile, summary: Summary, settings: DriftSettings
) -> dict[str, Any]:
    """The statistics of a drift report: per feature, classes, estimated accuracy, verdict."""
    min_samples = settings.min_samples
    per_feature = {
        name: _feature(name, ref, cur, settings, min_samples)
        for name, (ref, cur) in features(profile, summary).items()
    }
    classes = _classes(profile, summary, settings, min_samples)
    judged = summary.frames >= min_samples
    drifted = sorted(name for name, f in per_feature.items() if f["drifted"])
    if classes["drifted"]:
        drifted.append("classes")
    return {
        "samples": summary.frames,
        "windows": summary.windows,
        "mismatched_windows": summary.mismatched,
        "judged": judged,
        "features": per_feature,
        "classes": classes,
        **accuracy(profile, summary, settings),
        "drifted_features": drifted,
        "drifted": bool(drifted),
    }


def window_drifted(
    profile: ReferenceProfile, payload: dict[str, Any], settings: DriftSettings
) -> bool | None:
    """One window's verdict (None: too few frames, or bins that do not fit the profile).

    The same rule as ``compare``'s ``drifted``, computing only what the verdict needs
    (PSI per feature, chi-square on classes): it runs for every device's latest windows.
    """
    summary = Summary.empty(profile)
    if not summary.add_window(payload) or summary.frames < settings.min_samples:
        return None
    for name, (ref, cur) in features(profile, summary).items():
        r, c = np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)
        n, m = float(r.sum()), float(c.sum())
        if m < settings.min_samples or n <= 0:
            continue
        t = settings.threshold(name)
        level = max(stats.psi_alarm_level(n, m, r.size, t.alpha), t.min_psi)
        if stats.psi(r, c) > level:
            return True
    ref = np.array([profile.class_counts[label] for label in summary.labels], dtype=np.float64)
    cur = summary.class_counts
    if cur.sum() < settings.min_samples or ref.sum() <= 0:
        return False
    t = settings.threshold("classes")
    chi = stats.chi_square(ref, cur)
    return chi.p_value < t.alpha and stats.psi(ref, cur) > t.min_psi


__all__ = ["accuracy", "compare", "reference_accuracy", "window_drifted"]
