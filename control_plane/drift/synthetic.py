"""Synthetic reference profiles and telemetry windows with a shift of known size.

For tests, the drift benchmark and demos (production code never uses it). Values
are drawn the way a camera's would be summarised, then binned on the profile's
edges exactly as agents bin them (``protocols.features.bin_counts``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from protocols import INPUT_STAT_NAMES, Histogram, ReferenceProfile
from protocols.features import bin_counts
from protocols.messages import (
    BACKGROUND_COLS,
    BACKGROUND_ROWS,
    HEATMAP_COLS,
    HEATMAP_ROWS,
    REGION_WIDTH_EDGES,
    REGIONS_PER_FRAME_BINS,
)

LABELS = ["cat", "dog", "empty"]
# Day-time means and spreads of the input statistics (brightness, contrast, sharpness, sat.).
_STAT_MEAN = {"brightness": 130.0, "contrast": 50.0, "sharpness": 3.0, "saturation": 0.4}
_STAT_SD = {"brightness": 20.0, "contrast": 10.0, "sharpness": 0.5, "saturation": 0.08}
_CLASS_P = np.array([0.3, 0.4, 0.3])


def draw(
    rng: np.random.Generator, n: int, shift: float = 0.0, labels: int = len(LABELS)
) -> dict[str, np.ndarray]:
    """Raw per-frame values; ``shift`` moves every input statistic by that many standard
    deviations down (night), lowers confidence and changes the class mix with it."""
    values: dict[str, np.ndarray] = {
        name: rng.normal(_STAT_MEAN[name] - shift * _STAT_SD[name], _STAT_SD[name], n)
        for name in INPUT_STAT_NAMES
    }
    values["embedding.0"] = rng.normal(shift, 1.0, n)
    values["embedding.1"] = rng.normal(0.0, 1.0 + 0.2 * shift, n)
    a = max(5.0 - 1.5 * shift, 1.0)
    values["confidence"] = 1 / labels + (1 - 1 / labels) * rng.beta(a, 1.5, n)
    p = _CLASS_P + np.array([-0.1, -0.1, 0.2]) * min(shift, 1.0)
    values["classes"] = rng.choice(labels, size=n, p=p / p.sum())
    return values


def _hist(values: np.ndarray, edges: list[float]) -> Histogram:
    return Histogram(edges=edges, counts=[float(c) for c in bin_counts(values, edges)])


def _edges(values: np.ndarray, bins: int) -> list[float]:
    return [float(e) for e in np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))]


def profile(seed: int = 0, n: int = 5_000, bins: int = 16) -> ReferenceProfile:
    """A reference profile built like the trainer's: quantile edges of the training values."""
    v = draw(np.random.default_rng(seed), n)
    k = len(LABELS)
    conf_edges = [float(e) for e in np.linspace(1.0 / k, 1.0, 21)]
    return ReferenceProfile(
        sample_count=n,
        class_counts={lb: float((v["classes"] == i).sum()) for i, lb in enumerate(LABELS)},
        confidence=_hist(v["confidence"], conf_edges),
        input_stats={s: _hist(v[s], _edges(v[s], bins)) for s in INPUT_STAT_NAMES},
        embedding_mean=[0.0, 0.0, 0.0, 0.0],
        embedding_axes=[[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]],
        embedding_hists=[
            _hist(v[f"embedding.{i}"], _edges(v[f"embedding.{i}"], bins)) for i in range(2)
        ],
    )


def window(
    ref: ReferenceProfile,
    device_id: str,
    seq: int,
    *,
    rng: np.random.Generator,
    frames: int = 120,
    shift: float = 0.0,
    release_id: str | None = None,
    start: datetime,
    minutes: float = 1.0,
    condition: str | None = None,
    camera_id: str = "gate",
) -> dict[str, Any]:
    """One ``TelemetryWindow`` JSON with one camera's histograms on ``ref``'s edges."""
    v = draw(rng, frames, shift)
    camera = {
        "camera_id": camera_id,
        "state": "up",
        "frames_captured": frames,
        "frames_inferred": frames,
        "class_counts": {lb: int((v["classes"] == i).sum()) for i, lb in enumerate(LABELS)},
        "confidence_hist": bin_counts(v["confidence"], ref.confidence.edges).tolist(),
        "input_hists": {
            s: bin_counts(v[s], h.edges).tolist() for s, h in ref.input_stats.items()
        },
        "embedding_hists": [
            bin_counts(v[f"embedding.{i}"], h.edges).tolist()
            for i, h in enumerate(ref.embedding_hists)
        ],
    }
    if condition is not None:
        camera["condition"] = condition
    return {
        "schema": "parkwatch/v1",
        "device_id": device_id,
        "seq": seq,
        "release_id": release_id,
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=minutes)).isoformat(),
        "cameras": [camera],
    }


def regions(rng: np.random.Generator, frames: int, zoom: float = 1.0) -> dict[str, Any]:
    """A regions-mode camera window's region telemetry over ``frames`` frames of a park
    scene seen at ``zoom`` (1.35: the camera zoomed in off centre, so animals are wider,
    walk elsewhere in the picture, and the scene's outlines spread out)."""
    per_frame = rng.poisson(2.0, frames)
    widths = np.clip(rng.lognormal(np.log(0.12 * zoom), 0.35, int(per_frame.sum())), 0, 1)
    inner = REGION_WIDTH_EDGES[1:-1]
    heat = np.zeros(HEATMAP_COLS * HEATMAP_ROWS, int)
    for _ in range(int(rng.integers(20, 40))):  # animal-frames along the lower half's path
        x = float(np.clip(0.35 + (rng.random() - 0.35) * zoom, 0, 0.999))
        y = float(np.clip(0.6 + rng.normal(0.1, 0.08) * zoom, 0, 0.999))
        heat[int(y * HEATMAP_ROWS) * HEATMAP_COLS + int(x * HEATMAP_COLS)] += 1
    layout = np.array([2, 3, 3, 2, 8, 14, 14, 7, 10, 17, 12, 8], float)
    if zoom != 1.0:
        layout = np.array([1, 2, 3, 4, 4, 9, 16, 14, 5, 12, 15, 15], float)
    # The background's outlines: a fixed view (a path, a fence) seen through the zoom.
    ys, xs = np.mgrid[0:BACKGROUND_ROWS, 0:BACKGROUND_COLS] + 0.5
    ys = 0.6 * BACKGROUND_ROWS + (ys - 0.6 * BACKGROUND_ROWS) / zoom
    xs = 0.35 * BACKGROUND_COLS + (xs - 0.35 * BACKGROUND_COLS) / zoom
    view = 5.0 + 40.0 * np.exp(-((ys - 0.5 * xs - 1.0) ** 2)) + 20.0 * (np.abs(xs - 5.0) < 0.6)
    return {"mode": "regions", "regions_classified": int(per_frame.sum()),
            "regions_per_frame": np.bincount(np.minimum(per_frame, REGIONS_PER_FRAME_BINS - 1),
                                             minlength=REGIONS_PER_FRAME_BINS).tolist(),
            "region_width_hist": np.bincount(np.searchsorted(inner, widths, side="right"),
                                             minlength=len(inner) + 1).tolist(),
            "animals": {"cat": int(rng.integers(1, 4)), "dog": int(rng.integers(1, 4))},
            "animal_heatmap": heat.tolist(),
            "edge_layout": rng.multinomial(100 * frames, layout / layout.sum()).tolist(),
            "background_edges": rng.poisson(view.ravel()).tolist()}


__all__ = ["LABELS", "draw", "profile", "regions", "window"]
