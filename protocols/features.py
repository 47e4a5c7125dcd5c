"""The input statistics and binning rule that agents and the trainer must share.

Drift compares device histograms with the training reference, so both sides
must compute the same numbers the same way. Needs numpy, which is why
``protocols/__init__`` does not import this module.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .manifest import INPUT_STAT_NAMES

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def input_stats(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Brightness, contrast, sharpness, saturation of an HxWx3 RGB uint8 image.

    brightness: mean luma (0-255); contrast: std of luma; sharpness:
    log1p(mean |4-neighbour Laplacian| of luma); saturation: mean of
    (max - min) / max over channels (0-1). Order is ``INPUT_STAT_NAMES``.
    """
    img = rgb.astype(np.float32)
    luma = img @ _LUMA
    lap = (
        -4.0 * luma[1:-1, 1:-1]
        + luma[:-2, 1:-1]
        + luma[2:, 1:-1]
        + luma[1:-1, :-2]
        + luma[1:-1, 2:]
    )
    hi = img.max(axis=2)
    lo = img.min(axis=2)
    sat = (hi - lo) / np.maximum(hi, 1.0)
    return np.array(
        [luma.mean(), luma.std(), np.log1p(np.abs(lap).mean()), sat.mean()], dtype=np.float32
    )


def bin_index(values: npt.ArrayLike, edges: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Bin of each value; values below the first or above the last edge go to the end bins."""
    e = np.asarray(edges, dtype=np.float64)
    idx = np.searchsorted(e, np.asarray(values, dtype=np.float64), side="right") - 1
    return np.clip(idx, 0, len(e) - 2)


def bin_counts(values: npt.ArrayLike, edges: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Histogram counts of ``values`` over ``edges`` with the end-bin rule above."""
    n_bins = len(np.asarray(edges)) - 1
    return np.bincount(bin_index(values, edges), minlength=n_bins).astype(np.int64)


__all__ = ["INPUT_STAT_NAMES", "bin_counts", "bin_index", "input_stats"]
