"""One camera's region and animal counts: over a telemetry window (regions mode), and
running totals for ``/metrics``.

Fixed bins from ``protocols.messages`` (``REGION_WIDTH_EDGES``, ``REGIONS_PER_FRAME_BINS``,
the ``HEATMAP_COLS`` x ``HEATMAP_ROWS`` grid), so windows add up across the fleet.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protocols.messages import (
    EDGE_COLS,
    EDGE_ROWS,
    HEATMAP_COLS,
    HEATMAP_ROWS,
    REGION_WIDTH_EDGES,
    REGIONS_PER_FRAME_BINS,
)

_INNER_EDGES = REGION_WIDTH_EDGES[1:-1]


@dataclass
class RegionCounts:
    """Since the camera's analyzer started: regions the background model proposed, crops
    classified (probes of resting animals included) and crops rejected (a "no animal"
    label); and now: tracks alive, confirmed animal tracks among them. Written by the
    inference thread only; other threads read plain ints."""

    proposed: int = 0
    classified: int = 0
    rejected: int = 0
    live_tracks: int = 0
    live_animals: int = 0


class RegionWindow:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.regions = 0
        self.per_frame = [0] * REGIONS_PER_FRAME_BINS
        self.widths = [0] * (len(REGION_WIDTH_EDGES) - 1)
        self.frames_without_animal = 0
        self.heatmap = [0] * (HEATMAP_COLS * HEATMAP_ROWS)
        self.edges = [0] * (EDGE_COLS * EDGE_ROWS)
        self._animals: dict[int, str] = {}  # track id -> its label when last seen

    def add_frame(self, widths: Sequence[float],
                  animals: Iterable[tuple[int, str, float, float]],
                  edges: Sequence[int] = ()) -> None:
        """One analysed frame: the classified regions' widths (fractions of the frame's
        width), the confirmed animals present (track id, voted label, centre x, y as
        fractions) and the frame's edge layout (``MotionRegions.edge_layout``)."""
        for i, share in enumerate(edges):
            self.edges[i] += share
        self.regions += len(widths)
        self.per_frame[min(len(widths), REGIONS_PER_FRAME_BINS - 1)] += 1
        for w in widths:
            self.widths[bisect_right(_INNER_EDGES, w)] += 1
        present = False
        for track_id, label, x, y in animals:
            present = True
            self._animals[track_id] = label
            col = min(max(int(x * HEATMAP_COLS), 0), HEATMAP_COLS - 1)
            row = min(max(int(y * HEATMAP_ROWS), 0), HEATMAP_ROWS - 1)
            self.heatmap[row * HEATMAP_COLS + col] += 1
        if not present:
            self.frames_without_animal += 1

    def relabel(self, track_id: int, label: str | None) -> None:
        """A track seen in this window changed its vote (None: it is no animal after all)."""
        if track_id in self._animals:
            if label is None:
                del self._animals[track_id]
            else:
                self._animals[track_id] = label

    def track_ids(self) -> set[int]:
        """The animal tracks counted in this window so far."""
        return set(self._animals)

    def fields(self) -> dict[str, object]:
        """The ``CameraWindow`` fields of this window."""
        return {
            "regions_classified": self.regions,
            "regions_per_frame": list(self.per_frame),
            "region_width_hist": list(self.widths),
            "frames_without_animal": self.frames_without_animal,
            "animals": dict(Counter(self._animals.values())),
            "animal_heatmap": list(self.heatmap),
            "edge_layout": list(self.edges),
        }
