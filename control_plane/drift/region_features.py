"""Drift features from a window's region telemetry: what the crop features cannot see.

In regions mode the crop features (confidence, input statistics, embeddings, classes)
describe the crops the model classified, and every crop is resized to the model's input:
a camera zoomed in or turned shows the same crops. The agent's region telemetry of the
same window does change, so each field becomes a histogram feature of its own, judged
against the camera's production baseline with a level fitted from the baseline's own
windows like every other feature (``baseline.learn``):

* ``regions.width``: classified regions by width (``REGION_WIDTH_EDGES``): a zoom makes
  every animal wider;
* ``regions.per_frame``: frames by their number of regions: a wider view holds more;
* ``regions.animals``: distinct animals by voted label (the mix of animals, not crops);
* ``scene.edges``: where the picture's edges lie (``edge_layout``, whole frames): a camera
  turned or zoomed moves the scene's outlines even when no animal passes;
* ``scene.background``: where the background model's edges lie when the window closed
  (``background_edges``, an 8 x 6 grid): the view without the animals passing, which
  on the replay benchmark's real streams moved ``scene.edges`` from minute to minute
  as much as a turned camera did;
* ``regions.other``: classified regions that are an animal against those the model calls
  ``other`` (two bins, from the window's class counts): a new kind of object in view
  (people, balls, leaves) fills the window with ``other``. The three-class ``classes``
  feature sees it too, but its level also has to let through the baseline's own swings
  between cats and dogs (a minute holds a handful of animals), which on the replay
  benchmark's real streams hid an all-``other`` window; two bins keep only the
  animal-or-not question.

Not a feature: ``animal_heatmap`` (where animals were). A minute holds one to a few
animals, each over many frames, so the map is one or two paths, different every window:
on ``bench/drift_replay.py``'s real streams it raised 1,334 false alarms in 24
camera-days (on a 4 x 3 grid) where the crop features raised 5, and found no more shifts.

Windows without a field (whole-frame agents, agents older than the field) simply lack
that feature, and a baseline learned before it existed is judged without it.
Training profiles hold no region telemetry, so these features are drift features only
(against a baseline), never skew.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from protocols.messages import (
    BACKGROUND_COLS,
    BACKGROUND_ROWS,
    EDGE_COLS,
    EDGE_ROWS,
    REGION_WIDTH_EDGES,
    REGIONS_PER_FRAME_BINS,
)

FloatArray = npt.NDArray[np.float64]
# The window fields these features read: without them a window is judged on its crops only.
FIELDS = ("region_width_hist", "regions_per_frame", "animals", "edge_layout",
          "background_edges")
# Feature names in the order ``region_counts`` gives them.
REGION_FEATURES = ("regions.width", "regions.per_frame", "scene.edges", "scene.background",
                   "regions.animals", "regions.other")
OTHER = "other"  # the regions model's label for what is no animal
# Distinct animals in a minute are a handful, never ``min_samples``: judged from this many.
MIN_ANIMALS = 3
# ``regions.other`` asks one question of each region (animal or not), so a few regions
# answer it: on the replay benchmark a minute of new objects in view held 26 to 79, and
# at ``min_samples`` (30) its quieter minutes went unjudged, which held K of N back a
# window. Its level grows with 1 / regions, so fewer regions need a clearer change.
MIN_REGIONS_OTHER = 10


def _hist(camera: dict[str, Any], field: str, bins: int) -> FloatArray | None:
    values = camera.get(field) or []
    if len(values) != bins:
        return None
    return np.asarray(values, np.float64)


def region_counts(camera: dict[str, Any], labels: list[str]) -> dict[str, FloatArray]:
    """The region features one camera window carries, by feature name (``labels``: the
    release's labels, the bins of ``regions.animals``)."""
    out: dict[str, FloatArray] = {}
    found = {
        "regions.width": _hist(camera, "region_width_hist", len(REGION_WIDTH_EDGES) - 1),
        "regions.per_frame": _hist(camera, "regions_per_frame", REGIONS_PER_FRAME_BINS),
        "scene.edges": _hist(camera, "edge_layout", EDGE_COLS * EDGE_ROWS),
        "scene.background": _hist(camera, "background_edges", BACKGROUND_COLS * BACKGROUND_ROWS),
    }
    for name, counts in found.items():
        if counts is not None:
            out[name] = counts
    # Present in every regions-mode window (empty when no animal came by): a window of a
    # regions-mode agent has region widths, so its absence of animals is a count of zero.
    if "regions.width" in out:
        animals = camera.get("animals") or {}
        out["regions.animals"] = np.array([float(animals.get(k, 0)) for k in labels])
        classes = camera.get("class_counts") or {}
        if OTHER in labels:
            other = float(classes.get(OTHER, 0))
            animal = float(sum(classes.get(k, 0) for k in labels if k != OTHER))
            out["regions.other"] = np.array([animal, other])
    return out


def min_count(name: str, min_samples: int) -> int:
    """Counts a feature needs in a window (or a replay) before it is judged."""
    if name == "regions.animals":
        return min(min_samples, MIN_ANIMALS)
    if name == "regions.other":
        return min(min_samples, MIN_REGIONS_OTHER)
    return min_samples


def without_regions(camera: dict[str, Any]) -> dict[str, Any]:
    """A camera window as a crops-only judge sees it (the region fields removed)."""
    return {k: v for k, v in camera.items() if k not in FIELDS}


__all__ = ["FIELDS", "MIN_ANIMALS", "MIN_REGIONS_OTHER", "OTHER", "REGION_FEATURES",
           "min_count", "region_counts", "without_regions"]
