"""One device's windows of one release as an analysis holds them (merged, and its latest
N binned on the release's profile), and the plain reads both the merge (``collect``) and
the latest windows (``recent``) use."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from .baseline import camera_key
from .summary import Summary

Rows = list[float]  # a window's cameras on a profile's bins, one flat row after another
FlatRows = np.ndarray[Any, np.dtype[np.float32]]  # the same, as ingest stored them
Key = tuple[str, str]  # (camera id, condition): ``baseline.camera_key``


@dataclass
class DeviceWindows:
    """One device's windows of one release in the range: merged, plus its latest N.

    ``recent_rows``: each of ``recent``'s windows binned (one row per camera, in order;
    an idle camera is zeros), when ``collect`` read them (as ingest stored them, or
    binned as read); empty when the caller filled ``recent`` itself. ``recent_keys``:
    the same windows' cameras' (camera, condition) keys, filled with them."""

    summary: Summary
    recent: deque[dict[str, Any]]
    start: datetime
    end: datetime
    recent_rows: list[Rows | FlatRows] = field(default_factory=list)
    recent_keys: list[list[Key]] = field(default_factory=list)

    def binned(self) -> list[Rows | FlatRows | None]:
        """``recent_rows`` beside ``recent`` (None where a window is not binned yet)."""
        if len(self.recent_rows) == len(self.recent):
            return list(self.recent_rows)
        return [None] * len(self.recent)

    def camera_keys(self) -> list[list[Key]]:
        """Each of ``recent``'s windows' cameras' keys, in order: the learning of baselines,
        the hour check and the verdicts each group a chunk's cameras by them, and
        computing them once per read saves two of three passes over 150,000 cameras."""
        if len(self.recent_keys) != len(self.recent):
            self.recent_keys = [keys_of(p) for p in self.recent]
        return self.recent_keys


def keys_of(payload: dict[str, Any]) -> list[Key]:
    """The (camera, condition) keys of a window's cameras, in order."""
    return [camera_key(c) for c in payload.get("cameras") or []]


def rows_of(session: Session, query: sa.Executable) -> Iterable[Any]:
    """``query``'s rows of plain columns, run on the session's connection (its
    transaction): through the session itself each row also went through the ORM's
    loading, about a tenth of an analysis's reading. Nothing the analysis adds is pending
    when it reads these."""
    return session.connection().execute(query)


def binned(summary: Summary, payload: dict[str, Any]) -> Rows | None:
    """Each camera of a window on the summary's bins, one flat row after another (an idle
    camera: zeros); None if the window does not fit them (``Summary.fits``). A flat list,
    not an array: a chunk's windows become one matrix at once (``fleet.camera_rows``),
    where an array per window cost as much as binning it."""
    out: Rows = []
    for camera in payload.get("cameras") or []:
        if not summary.add_camera(out, camera):
            return None
    return out


__all__ = ["DeviceWindows", "FlatRows", "Key", "Rows", "binned", "keys_of", "rows_of"]
