"""Verdicts against production baselines for every device of a release at once.

``verdicts.baseline_holds`` judges one device's latest windows, camera by camera and
window by window (``baseline.judge``: PSI of every feature against the camera's
baseline at its own level); in a fleet report that was most of the time left after
``fleet.compare_many``. Here every camera window of every device is one row of a
matrix, each row beside its baseline's counts, and PSI, levels and the driving feature
come out for all rows per feature in a few array operations, with the per-window
functions' formulas in their order, so each verdict is the one ``baseline_holds``
gives (tests/unit/test_cp_drift_fleet.py holds them equal). The ``merged`` rule
(``baseline.judge_recent``, not the default) and the class mix (``baseline.judge_mix``,
a few counts per window) still run per camera.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from ..store.models import DriftBaseline
from . import baseline as bl
from .fleet import BoolArray, CameraRows, camera_rows, checked, layout, psi_rows
from .region_features import FIELDS, REGION_FEATURES, min_count, region_counts
from .stats import FloatArray
from .verdicts import mix_json, with_mix

Key = tuple[str, str]
REGION_FIELDS = frozenset(FIELDS)


@dataclass
class _Group:
    """One camera × condition of one device: its rows and its baseline."""

    device: int
    key: Key
    rows: list[int]
    base: DriftBaseline | None
    pooled: list[int]  # its rows among the device's latest ``mix_windows`` windows
    levels: dict[str, bl.Level] | None = None
    alpha: float = 0.0


def _groups(rows: CameraRows, keys: Sequence[Key], device_of: list[int], age: list[int],
            baselines: Sequence[dict[Key, DriftBaseline]], settings: DriftSettings
            ) -> list[_Group]:
    """Per device (in order), the camera × condition keys (``keys``: of each row) of its
    latest ``alert_windows`` windows (``age``: a window's place from its device's newest,
    0), sorted, with their rows."""
    if len(keys) != len(rows.cameras):
        raise ValueError(f"{len(keys)} camera keys for {len(rows.cameras)} camera rows")
    per: dict[tuple[int, Key], list[int]] = defaultdict(list)
    pooled: dict[tuple[int, Key], list[int]] = defaultdict(list)
    for k, (w, camera_key) in enumerate(zip(rows.window.tolist(), keys, strict=True)):
        key = (device_of[w], camera_key)
        if age[w] < settings.alert_windows:
            per[key].append(k)
        if age[w] < settings.mix_windows:
            pooled[key].append(k)
    return [_Group(d, key, idx, baselines[d].get(key), pooled[(d, key)])
            for (d, key), idx in sorted(per.items())]


def _estimates(profile: ReferenceProfile, rows: CameraRows, groups: list[_Group],
               settings: DriftSettings) -> list[float | None]:
    """``verdicts._estimate`` of each group: its cameras that fit merged (all groups'
    in one addition: a numpy call per group cost more than the sums)."""
    conf = layout(profile)[0][0].cols
    group_of = np.full(len(rows.cameras), -1, np.intp)  # -1: an older window, in none
    for gi, g in enumerate(groups):
        group_of[g.rows] = gi
    use = rows.fits & (group_of >= 0)
    merged = np.zeros((len(groups), conf.stop - conf.start))
    np.add.at(merged, group_of[use], rows.mat[use, conf])
    frames = merged.sum(axis=1)
    judged = frames.astype(np.int64) >= settings.min_samples
    checked(merged[judged], merged[judged])  # ``estimated_accuracy``'s refusal
    edges = np.asarray(profile.confidence.edges, np.float64)
    if edges.size != merged.shape[1] + 1:
        raise ValueError("a histogram needs exactly one more edge than counts")
    mids = np.clip((edges[:-1] + edges[1:]) / 2.0, 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.sum(merged * mids, axis=1) / frames
    return [float(e) if j else None for e, j in zip(est.tolist(), judged.tolist(), strict=True)]


def _drivers(profile: ReferenceProfile, rows: CameraRows, groups: list[_Group],
             settings: DriftSettings) -> dict[int, bl.Verdict]:
    """``baseline.judge`` of every row of a group with a baseline, by row index
    (rows it leaves unjudged are absent)."""
    hists, classes = layout(profile)
    min_samples, min_psi = settings.min_samples, settings.default_threshold.min_psi
    row_group = {k: gi for gi, g in enumerate(groups) if g.base is not None for k in g.rows}
    frames = rows.mat[:, hists[0].cols].sum(axis=1)
    labels = list(profile.class_counts)
    # Most cameras send no region fields (whole-frame agents): nothing to look up.
    regions = {k: region_counts(rows.cameras[k], labels)
               if not REGION_FIELDS.isdisjoint(rows.cameras[k]) else {} for k in row_group}
    crops = (rows.fits & (frames > 0) & (frames.astype(np.int64) >= min_samples)).tolist()
    cand = np.array(sorted(k for k in row_group if crops[k] or regions[k]), np.intp)
    if not cand.size:
        return {}
    # ``baseline.camera_counts``'s order: crop features, classes, then region features.
    sub = rows.mat[cand]  # one copy: each column below is a view of it
    judged = np.array(crops, bool)[cand]
    columns = [(f.name, sub[:, f.cols], judged) for f in [*hists, classes]]
    columns += _region_columns([regions[k] for k in cand.tolist()])
    names = [name for name, _, _ in columns]
    ratio = np.full((cand.size, len(names)), -np.inf)
    value, level = np.zeros_like(ratio), np.zeros_like(ratio)
    with_base = sorted({row_group[k] for k in cand.tolist()})
    at = {gi: i for i, gi in enumerate(with_base)}
    group_of = np.array([at[row_group[k]] for k in cand.tolist()], np.intp)
    bases = [groups[gi] for gi in with_base]
    for j, (name, cur, present) in enumerate(columns):
        ref, factor, usable = _baseline_feature(bases, name, cur.shape[1])
        ok = usable[group_of] & present & (cur.sum(axis=1) >= min_count(name, min_samples))
        if not ok.any():
            continue
        r, c = ref[group_of[ok]], cur[ok]
        checked(r, c)
        lv = np.maximum((1.0 / r.sum(axis=1) + 1.0 / c.sum(axis=1)) * factor[group_of[ok]],
                        min_psi)
        v = psi_rows(r, c)
        with np.errstate(divide="ignore"):
            ratio[ok, j] = np.where(lv > 0, v / lv, math.inf)
        value[ok, j], level[ok, j] = v, lv
    # The driver of each row: the first of equal ratios, as ``_driver`` keeps; read out
    # as lists at once (indexing the arrays element by element cost more than the PSI).
    best = np.argmax(ratio, axis=1)
    pick = (np.arange(cand.size), best)
    out = {}
    for k, j, rt, v, lv in zip(cand.tolist(), best.tolist(), ratio[pick].tolist(),
                               value[pick].tolist(), level[pick].tolist(), strict=True):
        if rt == -math.inf:
            continue  # no feature judged
        out[k] = bl.Verdict(rt > 1.0, names[j], v, lv, rt)
    return out


def _baseline_feature(bases: list[_Group], name: str, bins: int
                      ) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Each baseline's counts of one feature, its level before sample sizes, and whether
    it judges the feature (its counts on these bins, not all zero, and a level for it)."""
    counts = [g.base.counts.get(name) or [] if g.base is not None else [] for g in bases]
    levels = [g.levels.get(name) if g.levels is not None else None for g in bases]
    ref, factor = np.zeros((len(bases), bins)), np.zeros(len(bases))
    fit = [i for i, (c, lv) in enumerate(zip(counts, levels, strict=True))
           if len(c) == bins and lv is not None]
    if fit:
        ref[fit] = _stacked([counts[i] for i in fit], bins)
    # ``not <= 0``: counts that sum to NaN are judged, and refused by ``checked``.
    usable = np.zeros(len(bases), bool)
    usable[fit] = ~(ref[fit].sum(axis=1) <= 0)
    use = np.flatnonzero(usable).tolist()
    if use:
        factor[use] = [lv.factor(bases[i].alpha) for i in use
                       if (lv := levels[i]) is not None]
    return ref, factor, usable


def _stacked(counts: list[Any], bins: int) -> FloatArray:
    """Rows of ``bins`` counts as one matrix: the analysis's baselines hold them as
    ``array('d')`` (``learning.ActiveBaseline``), whose bytes join into it in one call,
    where converting them row by row, number by number, was most of the verdicts' time."""
    if all(isinstance(c, array) and c.typecode == "d" for c in counts):
        return np.frombuffer(b"".join(counts), np.float64).reshape(len(counts), bins)
    return np.array(counts, np.float64).reshape(len(counts), bins)


def _region_columns(regions: list[dict[str, FloatArray]]
                    ) -> list[tuple[str, FloatArray, BoolArray]]:
    """Each region feature as a column of the candidate rows: its counts (zeros where a
    row lacks it) and which rows have it."""
    out = []
    for name in REGION_FEATURES:
        have = [r[name] for r in regions if name in r]
        if not have:
            continue
        bins = have[0].size
        present = np.array([name in r and r[name].size == bins for r in regions], bool)
        cur = np.zeros((len(regions), bins))
        for i, r in enumerate(regions):
            if present[i]:
                cur[i] = r[name]
        out.append((name, cur, present))
    return out


def _camera(g: _Group, rows: CameraRows, estimate: float | None,
            verdicts: dict[int, bl.Verdict], profile: ReferenceProfile,
            settings: DriftSettings) -> dict[str, Any]:
    """``verdicts._camera`` of one group, from the rows' verdicts."""
    out: dict[str, Any] = {"camera_id": g.key[0], "condition": g.key[1],
                           "windows": len(g.rows), "estimated_accuracy": estimate}
    if g.base is None or g.levels is None:
        return out | {"state": "learning", "holds": False, "drifted": 0, "judged": 0,
                      "driver": None}
    judged = [verdicts[k] for k in g.rows if k in verdicts]
    drifted = sum(1 for v in judged if v.drifted)
    fitted = any(lv.recent_scale is not None for lv in g.levels.values())
    top: bl.Verdict | None
    if settings.alert_rule == "merged" and fitted:
        top = bl.judge_recent(profile, g.base.counts, g.levels,
                              [rows.cameras[k] for k in g.rows], alpha=g.alpha,
                              min_samples=settings.min_samples,
                              min_psi=settings.default_threshold.min_psi)
        holds = top is not None and top.drifted
    else:
        holds = drifted >= settings.alert_drifted_windows
        top = max(judged, key=lambda v: v.ratio or 0.0, default=None)
    mix = bl.judge_mix(profile, g.base.counts, g.levels, [rows.cameras[k] for k in g.pooled],
                       alpha=g.alpha)
    holds, top = with_mix(holds, top, mix)
    return out | {
        "state": "active", "baseline_id": g.base.id, "baseline_version": g.base.version,
        "judged": len(judged), "drifted": drifted, "holds": holds, "alpha": g.alpha,
        "driver": None if top is None else {
            "feature": top.feature, "statistic": top.statistic, "level": top.level,
            "exceeded": top.drifted},
        "class_mix": mix_json(mix, len(g.pooled)),
    }


def baseline_holds_many(
    profile: ReferenceProfile,
    recent: Sequence[Sequence[dict[str, Any]]],
    baselines: Sequence[dict[Key, DriftBaseline]],
    settings: DriftSettings,
    rows: CameraRows | None = None,
    keys: Sequence[Key] | None = None,
) -> list[dict[str, Any]]:
    """``[verdicts.baseline_holds(profile, list(r), b, settings) for r, b in zip(recent,
    baselines)]``, computed at once (``rows``: ``fleet.camera_rows`` of the windows of
    ``recent`` in order, ``keys``: ``baseline.camera_key`` of each of its cameras, when
    the caller has them)."""
    device_of = [d for d, ws in enumerate(recent) for _ in ws]
    age = [len(ws) - 1 - i for ws in recent for i in range(len(ws))]
    if rows is None:
        rows = camera_rows(profile, [p for ws in recent for p in ws])
    if keys is None:
        keys = [bl.camera_key(c) for c in rows.cameras]
    groups = _groups(rows, keys, device_of, age, baselines, settings)
    for g in groups:
        if g.base is not None:
            g.levels = bl.levels_of(g.base.levels)
            g.alpha = bl.window_alpha(settings.false_alarm_days, g.base.window_minutes,
                                      len(g.levels))
    estimates = _estimates(profile, rows, groups, settings)
    verdicts = _drivers(profile, rows, groups, settings)
    cameras: list[list[dict[str, Any]]] = [[] for _ in recent]
    for g, est in zip(groups, estimates, strict=True):
        cameras[g.device].append(_camera(g, rows, est, verdicts, profile, settings))
    return [{"cameras": cams, "holds": any(c["holds"] for c in cams),
             "k": settings.alert_drifted_windows, "n": settings.alert_windows}
            for cams in cameras]


__all__ = ["baseline_holds_many"]

