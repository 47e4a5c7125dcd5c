"""A window's cameras as the drift analysis reads them, stored beside its JSON at ingest.

Every analysis judges each device's latest windows (``mix_windows`` of them, 15 by
default): parsing their JSON (about 1 KB a camera, most of it the crop histograms) and
binning it on the release's profile was most of a 10,000-device report. Ingest bins every
window anyway, for the rollups, so it stores what it binned in the same insert:

* ``drift_rows``: each camera's counts on the release's profile bins (``collect.binned``'s
  rows: an idle camera is zeros), one row after another, as little-endian float32. NULL
  when the window's release has no profile yet, when a camera is on other bins (the
  analysis then reads the JSON, which says the same), or when a count is not exact in
  single precision (never for counts below 2^24: the analysis's figures stay bit for bit);
* ``drift_cameras``: each camera's JSON without the histograms that are in those rows:
  what the verdicts read besides them (camera and condition, class counts, the region
  fields of ``region_features``).

A window whose ``drift_rows`` is NULL (older than this column, merged by retention,
stored by other code) is read from its JSON, as before. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .region_features import FIELDS
from .summary import Summary

ROW_DTYPE = np.dtype("<f4")
# What the verdicts read of a camera besides its binned rows. The crop histograms
# (confidence, input statistics, embeddings) are the rows; the rest is not analysed.
KEPT = ("camera_id", "condition", "class_counts", *FIELDS)


def cameras_json(cameras: Sequence[dict[str, Any]]) -> str:
    """The cameras' fields that the analysis reads besides their rows, as JSON text (a
    field at its empty default is left out: the readers take a missing one as empty)."""
    return json.dumps([{k: c.get(k) for k in KEPT if c.get(k) or k == "camera_id"}
                       for c in cameras], separators=(",", ":"))


def flat_rows(bins: Summary, cameras: Sequence[dict[str, Any]]) -> list[float] | None:
    """Each camera on ``bins``, one flat row after another (an idle camera: zeros); None
    if one is on other bins. The same as ``collect.binned``."""
    out: list[float] = []
    for camera in cameras:
        if not bins.add_camera(out, camera):
            return None
    return out


def encode_many(flats: Sequence[list[float] | None]) -> list[bytes | None]:
    """Each window's flat rows as ``drift_rows`` bytes (None: not stored), converted in
    one numpy call for the batch: a call per window cost more than the conversion."""
    sizes = [len(f) if f is not None else 0 for f in flats]
    every = [x for f in flats if f is not None for x in f]
    wide = np.array(every, np.float64)
    narrow = wide.astype(ROW_DTYPE)
    exact = narrow.astype(np.float64) == wide
    data = narrow.tobytes()
    out: list[bytes | None] = []
    at = 0
    for f, n in zip(flats, sizes, strict=True):
        if f is None or not exact[at : at + n].all():
            out.append(None)
        else:
            out.append(data[at * ROW_DTYPE.itemsize : (at + n) * ROW_DTYPE.itemsize])
        at += n
    return out


def decode(data: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    """``drift_rows`` as one flat array (read-only, over the bytes)."""
    return np.frombuffer(data, ROW_DTYPE)


__all__ = ["KEPT", "ROW_DTYPE", "cameras_json", "decode", "encode_many", "flat_rows"]
