"""Mergeable telemetry summaries: windows from many cameras, devices and minutes, added up.

A ``Summary`` holds counts on the bins of one release's reference profile. A
window binned on other edges (another release's profile) cannot be added; it is
counted in ``mismatched`` and left out, never mixed in.

All counts live in one flat vector (confidence, input statistics, embedding axes,
classes); windows are appended to one flat buffer of Python numbers and summed in one
numpy call per ``FLUSH_ROWS`` rows (and on ``flush``), because a fleet report adds up
over a million small windows: converting one flat list is about twice as fast as a
list of rows, and memory stays bounded however long the range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from protocols import ReferenceProfile

FloatArray = npt.NDArray[np.float64]
FLUSH_ROWS = 4096
CameraRow = tuple[dict[str, Any], list[float]]  # a window's camera JSON and its flat counts


@dataclass
class Summary:
    """Counts over the bins of a profile; ``windows`` added, ``mismatched`` left out."""

    labels: list[str]
    conf_bins: int
    input_bins: dict[str, int]
    emb_bins: list[int]
    flat: FloatArray
    windows: int = 0
    mismatched: int = 0
    _pending: list[float] = field(default_factory=list, repr=False)  # whole rows, flat

    @classmethod
    def empty(cls, profile: ReferenceProfile) -> Summary:
        input_bins = {k: len(h.counts) for k, h in profile.input_stats.items()}
        emb_bins = [len(h.counts) for h in profile.embedding_hists]
        size = (len(profile.confidence.counts) + sum(input_bins.values()) + sum(emb_bins)
                + len(profile.class_counts))
        return cls(labels=list(profile.class_counts), conf_bins=len(profile.confidence.counts),
                   input_bins=input_bins, emb_bins=emb_bins, flat=np.zeros(size))

    def empty_like(self) -> Summary:
        """An empty summary on the same bins (cheaper than ``empty`` for many of them)."""
        return Summary(labels=self.labels, conf_bins=self.conf_bins,
                       input_bins=self.input_bins, emb_bins=self.emb_bins,
                       flat=np.zeros(self.flat.size))

    def flush(self) -> FloatArray:
        """Add the buffered rows into ``flat``; returns it."""
        if self._pending:
            rows = np.array(self._pending, dtype=np.float64).reshape(-1, self.flat.size)
            self.flat = self.flat + rows.sum(axis=0)
            self._pending = []
        return self.flat

    @property
    def confidence(self) -> FloatArray:
        return self.flush()[: self.conf_bins]

    @property
    def inputs(self) -> dict[str, FloatArray]:
        flat, out, at = self.flush(), {}, self.conf_bins
        for name, n in self.input_bins.items():
            out[name] = flat[at : at + n]
            at += n
        return out

    @property
    def embeddings(self) -> list[FloatArray]:
        flat, out = self.flush(), []
        at = self.conf_bins + sum(self.input_bins.values())
        for n in self.emb_bins:
            out.append(flat[at : at + n])
            at += n
        return out

    @property
    def class_counts(self) -> FloatArray:
        return self.flush()[-len(self.labels) :]

    @property
    def frames(self) -> int:
        return int(self.confidence.sum())

    def _append(self, pending: list[float], camera: dict[str, Any], conf: list[float]) -> bool:
        """Append the camera's counts as one flat row; False if its bins differ (the caller
        then drops what was appended)."""
        if len(conf) != self.conf_bins:
            return False
        pending += conf
        inputs = camera.get("input_hists") or {}
        for name, n in self.input_bins.items():
            hist = inputs.get(name) or []
            if len(hist) != n:
                return False
            pending += hist
        emb = camera.get("embedding_hists") or []
        if len(emb) != len(self.emb_bins):
            return False
        for hist, n in zip(emb, self.emb_bins, strict=True):
            if len(hist) != n:
                return False
            pending += hist
        counts = camera.get("class_counts") or {}
        pending += [counts.get(label, 0) for label in self.labels]
        return True

    def add_camera(self, out: list[float], camera: dict[str, Any]) -> bool:
        """Append one camera's counts to ``out`` as one flat row, ``camera_row``'s (an idle
        camera: zeros); False if its bins differ (``out`` then holds part of the row)."""
        conf = camera.get("confidence_hist") or []
        if not sum(conf):
            out += [0] * self.flat.size
            return True
        return self._append(out, camera, conf)

    def camera_rows(self, payload: dict[str, Any]) -> list[CameraRow] | None:
        """Each camera of a ``TelemetryWindow`` JSON that inferred frames, with its counts as
        one flat row; None if the window's bins differ from the profile's."""
        out: list[CameraRow] = []
        for camera in payload.get("cameras") or []:
            conf = camera.get("confidence_hist") or []
            if not sum(conf):
                continue
            row: list[float] = []
            if not self._append(row, camera, conf):
                return None
            out.append((camera, row))
        return out

    def add_rows(self, rows: list[list[float]]) -> None:
        """Add one window given as its cameras' flat rows (``camera_rows``)."""
        pending = self._pending
        for row in rows:
            pending += row
        if len(pending) >= FLUSH_ROWS * self.flat.size:
            self.flush()
        self.windows += 1

    def add_window(self, payload: dict[str, Any]) -> bool:
        """Add one ``TelemetryWindow`` JSON; False (and counted as mismatched) if its bins
        differ from the profile's. Cameras with no inferred frames add nothing."""
        rows = self.camera_rows(payload)
        if rows is None:
            self.mismatched += 1
            return False
        self.add_rows([row for _, row in rows])
        return True

    def camera_row(self, camera: dict[str, Any]) -> list[float] | None:
        """One camera's counts as a flat row on these bins (``add_window`` of it alone
        adds exactly this; an idle camera: zeros); None if its bins differ."""
        rows = self.camera_rows({"cameras": [camera]})
        if rows is None:
            return None
        return rows[0][1] if rows else [0.0] * self.flat.size

    def fits(self, payload: dict[str, Any]) -> bool:
        """Whether ``add_window`` would add this window (its bins are the profile's)."""
        return self.camera_rows(payload) is not None

    def add_counts(self, flat: list[float], windows: int, mismatched: int) -> None:
        """Add a rolled-up flat vector (``windows`` merged, ``mismatched`` left out)."""
        if flat:
            self._pending += flat
            if len(self._pending) >= FLUSH_ROWS * self.flat.size:
                self.flush()
        self.windows += windows
        self.mismatched += mismatched

    def merge(self, other: Summary) -> None:
        self.flat = self.flush() + other.flush()
        self.windows += other.windows
        self.mismatched += other.mismatched


def features(profile: ReferenceProfile, summary: Summary) -> dict[str, tuple[Any, Any]]:
    """Each histogram feature as (reference counts, current counts), by feature name."""
    out: dict[str, tuple[Any, Any]] = {
        "confidence": (profile.confidence.counts, summary.confidence)
    }
    inputs = summary.inputs
    for name, hist in profile.input_stats.items():
        out[f"input.{name}"] = (hist.counts, inputs[name])
    embeddings = summary.embeddings
    for i, hist in enumerate(profile.embedding_hists):
        out[f"embedding.{i}"] = (hist.counts, embeddings[i])
    return out


__all__ = ["Summary", "features"]
