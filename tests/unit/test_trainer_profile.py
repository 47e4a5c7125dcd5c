"""Pieces of the drift profile: quantile edges, principal axes, golden-input picking."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from protocols import Histogram
from protocols.features import bin_counts
from trainer.data import ImageRecord
from trainer.profile import histogram, pick_golden_records, principal_axes, quantile_edges


def test_quantile_edges_are_strictly_increasing_even_with_ties() -> None:
    rng = np.random.default_rng(0)
    for values in (rng.normal(size=500), np.r_[np.zeros(400), rng.normal(size=50)], np.ones(30)):
        edges = quantile_edges(values, 16)
        assert all(b > a for a, b in itertools.pairwise(edges))
        hist = histogram(values, edges)
        assert isinstance(hist, Histogram) and sum(hist.counts) == len(values)


def test_quantile_bins_of_the_reference_are_roughly_uniform() -> None:
    values = np.random.default_rng(1).exponential(size=1600)
    counts = bin_counts(values, quantile_edges(values, 16))
    assert counts.min() >= 90 and counts.max() <= 110


def test_principal_axes_are_orthonormal_ordered_and_sign_stable() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(400, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    mean, axes = principal_axes(data, 3)
    assert axes.shape == (3, 6) and mean.shape == (6,)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-9)
    assert np.argmax(np.abs(axes[0])) == 0 and np.argmax(np.abs(axes[1])) == 1
    _, again = principal_axes(data[::-1].copy(), 3)
    np.testing.assert_allclose(axes, again, atol=1e-9)
    assert all(axis[np.argmax(np.abs(axis))] > 0 for axis in axes)


def test_golden_records_alternate_labels() -> None:
    records = [
        ImageRecord(Path(f"/x/{i}"), f"{i}", f"{i:064x}", "ab"[i % 2], i % 2, 8, 8, "test")
        for i in range(10)
    ]
    picked = pick_golden_records(records, 4)
    assert [r.label_index for r in picked] == [0, 1, 0, 1]
    assert len(pick_golden_records(records[:1], 4)) == 1
