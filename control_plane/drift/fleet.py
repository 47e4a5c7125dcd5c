"""Drift statistics of many summaries at once: every device of a release, every window.

``compare.compare`` and ``compare.window_drifted`` judge one summary at a time; a fleet
report runs them for every device and each device's latest N windows, where numpy's
per-call overhead on histograms of a few bins was nearly all of the analysis's time.
Here the summaries are stacked into one matrix (rows: devices or windows, columns: the
profile's flat bins) and each statistic is computed for all rows in a few array
operations, with the same formulas in the same order, so each row's figures are the
ones the per-summary functions give (tests/unit/test_cp_drift_fleet.py holds them equal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy.spatial.distance import jensenshannon

from protocols import ReferenceProfile

from ..config.drift import DriftSettings
from . import stats
from .compare import reference_accuracy
from .stats import FloatArray
from .summary import Summary

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]
# A window's cameras on the profile's bins, one row after another: binned in Python, or
# as ingest stored them (``stored_rows``).
WindowRows = list[float] | npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Feature:
    name: str
    cols: slice  # the feature's bins in a summary's flat vector
    ref: FloatArray


def layout(profile: ReferenceProfile) -> tuple[list[_Feature], _Feature]:
    """The histogram features in ``summary.features`` order, and the classes."""
    ref: list[tuple[str, list[float]]] = [("confidence", profile.confidence.counts)]
    ref += [(f"input.{k}", h.counts) for k, h in profile.input_stats.items()]
    ref += [(f"embedding.{i}", h.counts) for i, h in enumerate(profile.embedding_hists)]
    out, at = [], 0
    for name, counts in ref:
        out.append(_Feature(name, slice(at, at + len(counts)), np.asarray(counts, np.float64)))
        at += len(counts)
    classes = np.array(list(profile.class_counts.values()), np.float64)
    return out, _Feature("classes", slice(at, at + classes.size), classes)


def checked(ref: FloatArray, cur: FloatArray) -> None:
    """``stats._pair``'s checks, for the rows that are compared."""
    for arr in (ref, cur):
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError("counts must be finite and non-negative")


def psi_rows(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """``stats.psi`` of each row of ``cur`` against ``ref`` (one row for all, or one each)."""
    pseudo, bins = stats.PSI_PSEUDO_COUNT, cur.shape[1]
    p = (ref + pseudo) / (ref.sum(axis=-1, keepdims=True) + pseudo * bins)
    q = (cur + pseudo) / (cur.sum(axis=1, keepdims=True) + pseudo * bins)
    out: FloatArray = np.sum((q - p) * np.log(q / p), axis=1)
    return out


def _ks(ref: FloatArray, cur: FloatArray) -> FloatArray:
    """``stats.ks_binned`` of each row."""
    diff = np.cumsum(ref) / ref.sum() - np.cumsum(cur, axis=1) / cur.sum(axis=1, keepdims=True)
    out: FloatArray = np.max(np.abs(diff), axis=1)
    return out


def _chi_square(ref: FloatArray, cur: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``stats.chi_square`` of each row: (statistic, p-value, dof); rows are grouped by
    which classes are empty in both, so each group's table drops the same columns."""
    rows = len(cur)
    stat, p, dof = np.zeros(rows), np.ones(rows), np.zeros(rows)
    keep = (ref + cur) > 0
    for mask in np.unique(keep, axis=0):
        idx = np.flatnonzero((keep == mask).all(axis=1))
        if mask.sum() < 2:
            continue
        table = np.stack([np.broadcast_to(ref[mask], (idx.size, int(mask.sum()))),
                          cur[idx][:, mask]], axis=1)
        expected = (table.sum(axis=2, keepdims=True) * table.sum(axis=1, keepdims=True)
                    / table.sum(axis=(1, 2), keepdims=True))
        stat[idx] = np.sum((table - expected) ** 2 / expected, axis=(1, 2))
        dof[idx] = int(mask.sum()) - 1
        p[idx] = special.chdtrc(dof[idx], stat[idx])
    return stat, p, dof


def _histogram(f: _Feature, cur: FloatArray, settings: DriftSettings) -> list[dict[str, Any]]:
    """``compare._feature`` for every row of ``cur`` (this feature's columns)."""
    n, m = float(f.ref.sum()), cur.sum(axis=1)
    judged = (m >= settings.min_samples) & (n > 0)
    out: list[dict[str, Any]] = [{"samples": int(x), "judged": j}
                                 for x, j in zip(m.tolist(), judged.tolist(), strict=True)]
    rows = np.flatnonzero(judged)
    for o in out:
        if not o["judged"]:
            o["drifted"] = False
    if not rows.size:
        return out
    c, mj = cur[rows], m[rows]
    checked(f.ref, c)
    t = settings.threshold(f.name)
    bins = int(f.ref.size)
    size = 1.0 / n + 1.0 / mj
    psi = psi_rows(f.ref, c)
    level = size * _quantile(bins, t.alpha)
    psi_alarm = np.maximum(level, t.min_psi)
    js = jensenshannon(f.ref[None, :], c, base=2.0, axis=1)
    js_alarm = np.sqrt(level / (8.0 * math.log(2.0)))
    ks = _ks(f.ref, c)
    ks_alarm = stats.ks_quantile(1.0 - t.alpha) * np.sqrt(size)
    for k, i in enumerate(rows.tolist()):
        out[i] |= {"psi": float(psi[k]), "psi_alarm": float(psi_alarm[k]), "js": float(js[k]),
                   "js_alarm": float(js_alarm[k]), "ks": float(ks[k]),
                   "ks_alarm": float(ks_alarm[k]), "drifted": bool(psi[k] > psi_alarm[k])}
    return out


def _quantile(bins: int, alpha: float) -> float:
    """``stats.psi_alarm_level``'s chi-square quantile (inf below two bins)."""
    return stats.chi2_quantile(1.0 - alpha, bins - 1) if bins >= 2 else math.inf


def _classes(f: _Feature, labels: list[str], cur: FloatArray,
             settings: DriftSettings) -> list[dict[str, Any]]:
    """``compare._classes`` for every row."""
    out = _histogram(f, cur, settings)
    rows = np.flatnonzero([o["judged"] for o in out])
    if not rows.size:
        return out
    t = settings.threshold("classes")
    c = cur[rows]
    chi2, p, dof = _chi_square(f.ref, c)
    ref_share = dict(zip(labels, (f.ref / f.ref.sum()).tolist(), strict=True))
    share = (c / c.sum(axis=1, keepdims=True)).tolist()
    for k, i in enumerate(rows.tolist()):
        o = out[i]
        o |= {"chi2": float(chi2[k]), "chi2_p": float(p[k]),
              "chi2_alarm": stats.chi_square_alarm_level(int(dof[k]), t.alpha),
              "reference_share": dict(ref_share),
              "share": dict(zip(labels, share[k], strict=True))}
        # Both must agree: chi-square alone flags tiny class shifts on huge samples.
        o["drifted"] = bool(p[k] < t.alpha) and o["psi"] > t.min_psi
    return out


def _accuracy(profile: ReferenceProfile, conf: FloatArray, frames: list[int],
              settings: DriftSettings) -> list[dict[str, Any]]:
    """``compare.accuracy`` for every row of confidence counts."""
    ref_acc = reference_accuracy(profile)
    judged = np.array([f >= settings.min_samples for f in frames], bool) & (ref_acc is not None)
    est = np.full(len(frames), np.nan)
    if judged.any():
        checked(conf[judged], conf[judged])
        e = np.asarray(profile.confidence.edges, np.float64)
        mids = np.clip((e[:-1] + e[1:]) / 2.0, 0.0, 1.0)
        c = conf[judged]
        est[judged] = np.sum(c * mids, axis=1) / c.sum(axis=1)
    out = []
    for j, x in zip(judged.tolist(), est.tolist(), strict=True):
        e_or_none = float(x) if j else None
        drop = None if e_or_none is None or ref_acc is None else ref_acc - e_or_none
        out.append({"reference_accuracy": ref_acc, "estimated_accuracy": e_or_none,
                    "accuracy_drop": drop,
                    "accuracy_dropped": drop is not None and drop > settings.max_accuracy_drop})
    return out


def compare_many(profile: ReferenceProfile, summaries: Sequence[Summary],
                 settings: DriftSettings) -> list[dict[str, Any]]:
    """``[compare.compare(profile, s, settings) for s in summaries]``, computed at once."""
    if not summaries:
        return []
    mat = np.stack([s.flush() for s in summaries])
    hists, classes = layout(profile)
    per_feature = {f.name: _histogram(f, mat[:, f.cols], settings) for f in hists}
    cls = _classes(classes, summaries[0].labels, mat[:, classes.cols], settings)
    frames = [s.frames for s in summaries]
    acc = _accuracy(profile, mat[:, hists[0].cols], frames, settings)
    out = []
    for i, s in enumerate(summaries):
        features = {name: rows[i] for name, rows in per_feature.items()}
        drifted = sorted(name for name, f in features.items() if f["drifted"])
        if cls[i]["drifted"]:
            drifted.append("classes")
        out.append({"samples": frames[i], "windows": s.windows,
                    "mismatched_windows": s.mismatched,
                    "judged": frames[i] >= settings.min_samples, "features": features,
                    "classes": cls[i], **acc[i], "drifted_features": drifted,
                    "drifted": bool(drifted)})
    return out


@dataclass
class CameraRows:
    """Every camera of some windows as one row of counts on the profile's bins.

    ``fits``: its bins are the profile's (what ``Summary.add_window`` of it alone adds is
    its row; an idle camera fits, as zeros; one that does not fit is zeros too);
    ``window``: the index of its window."""

    mat: FloatArray
    fits: BoolArray
    window: np.ndarray[Any, np.dtype[np.intp]]
    cameras: list[dict[str, Any]]


def camera_rows(profile: ReferenceProfile, payloads: Sequence[dict[str, Any]],
                binned: Sequence[WindowRows | None] | None = None) -> CameraRows:
    """Each camera of ``payloads`` on the profile's bins, binned by ``Summary``'s own code
    (``binned``: beside each payload, its cameras' rows one after another when the caller
    has them, as ``collect.binned`` gives them or ingest stored them, an array; None where
    not). Rows given as lists go into one flat list and become the matrix in one
    conversion; arrays are joined to it as they are."""
    template = Summary.empty(profile)
    size = template.flat.size
    known = list(binned) if binned is not None else [None] * len(payloads)
    parts: list[npt.NDArray[np.floating[Any]]] = []
    flat: list[float] = []
    fits: list[bool] = []
    window: list[int] = []
    cameras: list[dict[str, Any]] = []
    for i, (p, rows) in enumerate(zip(payloads, known, strict=True)):
        mine = p.get("cameras") or []
        if isinstance(rows, np.ndarray) and rows.size == len(mine) * size:
            if flat:
                parts.append(np.array(flat, np.float64))
                flat = []
            parts.append(rows)
            fits += [True] * len(mine)
        elif rows is not None and len(rows) == len(mine) * size:
            flat += rows
            fits += [True] * len(mine)
        else:
            for camera in mine:
                at = len(flat)
                fits.append(template.add_camera(flat, camera))
                if not fits[-1]:
                    del flat[at:]
                    flat += [0] * size
        window += [i] * len(mine)
        cameras += mine
    parts.append(np.array(flat, np.float64))
    mat = np.concatenate(parts, dtype=np.float64).reshape(len(cameras), size)
    return CameraRows(mat, np.array(fits, bool), np.array(window, np.intp), cameras)


def window_rows(rows: CameraRows, windows: int) -> tuple[FloatArray, BoolArray]:
    """Each of ``windows`` windows' counts on the profile's bins (its cameras in ``rows``
    added up), and which fit them (a window with one camera on other bins is left out
    whole: a row of zeros)."""
    fits = np.ones(windows, bool)
    fits[rows.window[~rows.fits]] = False
    if rows.window.size == windows and np.array_equal(rows.window, np.arange(windows)):
        # A camera a window (most agents): each window's counts are its camera's row,
        # added to zeros as below (an unbuffered ``add.at`` of every row cost more).
        mat = rows.mat + 0.0
        mat[~fits] = 0.0
        return mat, fits
    mat = np.zeros((windows, rows.mat.shape[1]))
    keep = fits[rows.window]
    np.add.at(mat, rows.window[keep], rows.mat[keep])
    return mat, fits


def windows_drifted(profile: ReferenceProfile, payloads: Sequence[dict[str, Any]],
                    settings: DriftSettings, rows: CameraRows | None = None,
                    judge: Sequence[bool] | None = None) -> list[bool | None]:
    """``[compare.window_drifted(profile, p, settings) for p in payloads]``, at once
    (``rows``: ``camera_rows`` of ``payloads``, when the caller has them). ``judge``:
    which windows to judge (the others are None, as unjudged): an analysis reads each
    device's latest ``mix_windows`` for the class mix, but judges its latest
    ``alert_windows`` only, a third of them by default."""
    if not payloads:
        return []
    mat, fits = window_rows(rows or camera_rows(profile, payloads), len(payloads))
    picked = np.arange(len(payloads)) if judge is None else np.flatnonzero(judge)
    mat, fits = mat[picked], fits[picked]
    hists, classes = layout(profile)
    valid = fits & (mat[:, hists[0].cols].sum(axis=1) >= settings.min_samples)
    drifted = np.zeros(len(picked), bool)
    for f in hists:
        cur = mat[:, f.cols]
        n, m = float(f.ref.sum()), cur.sum(axis=1)
        use = np.flatnonzero(valid & (m >= settings.min_samples) & (n > 0))
        if not use.size:
            continue
        checked(f.ref, cur[use])
        t = settings.threshold(f.name)
        level = np.maximum((1.0 / n + 1.0 / m[use]) * _quantile(int(f.ref.size), t.alpha),
                           t.min_psi)
        drifted[use] |= psi_rows(f.ref, cur[use]) > level
    cur = mat[:, classes.cols]
    use = np.flatnonzero(valid & ~drifted & (cur.sum(axis=1) >= settings.min_samples)
                         & (classes.ref.sum() > 0))
    if use.size:
        checked(classes.ref, cur[use])
        t = settings.threshold("classes")
        _, p, _ = _chi_square(classes.ref, cur[use])
        drifted[use] = (p < t.alpha) & (psi_rows(classes.ref, cur[use]) > t.min_psi)
    out: list[bool | None] = [None] * len(payloads)
    for i, d, v in zip(picked.tolist(), drifted.tolist(), valid.tolist(), strict=True):
        if v:
            out[i] = d
    return out


__all__ = ["CameraRows", "camera_rows", "checked", "compare_many", "layout", "psi_rows",
           "window_rows", "windows_drifted"]
