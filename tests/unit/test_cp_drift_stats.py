"""Drift statistics from histograms, validated against scipy on the raw samples.

Tolerances (stated, and why):
- KS: the binned statistic is the raw two-sample KS restricted to the bin edges, so it is
  never above scipy's ``ks_2samp`` and falls below it by at most the largest bin mass.
- JS distance: ours on 16 quantile bins of the raw samples vs the population value of the
  two normals the samples come from (scipy ``quad``): within 0.03 absolute (sampling noise
  of 5,000 samples in 16 bins is about 0.02; coarse bins lose a little of the shift).
- PSI: for N(0,1) vs N(mu,1) the population PSI (symmetric KL) is mu**2; 16 quantile bins
  lose a little of it (data processing inequality) and sampling adds noise: within 20 %.
- Chi-square: equal to scipy's ``chi2_contingency`` on the raw labels' contingency table.
- Calibrated alarm levels: with no drift, PSI fires on alpha/5 .. 2.2 alpha of the windows,
  JS on at most 3 alpha, KS (conservative) on at most 1.6 alpha.
- Estimated accuracy: within half the widest bin of the raw mean confidence, and within
  four standard errors of the accuracy of a calibrated synthetic classifier.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps
from scipy.integrate import quad

from control_plane.drift import stats
from protocols.features import bin_counts

REF_N, CUR_N = 20_000, 5_000


def quantile_edges(values: np.ndarray, bins: int = 16) -> np.ndarray:
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.random.default_rng(1).normal(0.0, 1.0, REF_N)


def current(shift: float, seed: int = 2, n: int = CUR_N) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, n)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3, 0.7, 1.5])
def test_ks_from_binned_cdfs_matches_scipy_on_raw_samples(
    reference: np.ndarray, shift: float
) -> None:
    edges = quantile_edges(reference)
    cur = current(shift)
    ref_h, cur_h = bin_counts(reference, edges), bin_counts(cur, edges)
    raw = sps.ks_2samp(reference, cur).statistic
    ours = stats.ks_binned(ref_h, cur_h)
    assert ours <= raw + 1e-12
    assert raw - ours <= stats.ks_bin_tolerance(ref_h, cur_h)


def population_js(shift: float) -> float:
    """JS distance (base 2) of N(0,1) and N(shift,1), by numerical integration (scipy)."""
    p, q = sps.norm(0.0, 1.0), sps.norm(shift, 1.0)

    def term(x: float) -> float:
        a, b = p.pdf(x), q.pdf(x)
        m = (a + b) / 2
        return 0.5 * (a * np.log2(a / m) if a > 0 else 0.0) + 0.5 * (
            b * np.log2(b / m) if b > 0 else 0.0
        )

    value, _ = quad(term, -12.0, 12.0 + shift, limit=200)
    return float(np.sqrt(max(value, 0.0)))


@pytest.mark.parametrize("shift", [0.0, 0.2, 0.5, 1.0])
def test_js_distance_matches_the_population_value(reference: np.ndarray, shift: float) -> None:
    edges = quantile_edges(reference)
    ours = stats.js_distance(bin_counts(reference, edges), bin_counts(current(shift), edges))
    assert abs(ours - population_js(shift)) <= 0.03


@pytest.mark.parametrize("shift", [0.3, 0.5, 0.8])
def test_psi_matches_the_population_value_of_a_known_shift(
    reference: np.ndarray, shift: float
) -> None:
    edges = quantile_edges(reference)
    ours = stats.psi(bin_counts(reference, edges), bin_counts(current(shift), edges))
    assert ours == pytest.approx(shift**2, rel=0.2)


def test_chi_square_on_class_counts_equals_scipy_on_raw_labels() -> None:
    rng = np.random.default_rng(3)
    ref_labels = rng.choice(3, size=3_000, p=[0.5, 0.3, 0.2])
    cur_labels = rng.choice(3, size=800, p=[0.4, 0.35, 0.25])
    table = np.array([[np.sum(lab == k) for k in range(3)] for lab in (ref_labels, cur_labels)])
    expected = sps.chi2_contingency(table, correction=False)
    ours = stats.chi_square(np.bincount(ref_labels), np.bincount(cur_labels))
    assert ours.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert ours.dof == 2


def test_estimated_accuracy_from_a_confidence_histogram() -> None:
    rng = np.random.default_rng(4)
    conf = rng.beta(5, 2, 4_000) * (1 - 1 / 3) + 1 / 3  # top-class confidence of 3 classes
    correct = rng.random(conf.size) < conf  # a calibrated classifier: P(correct) = conf
    edges = np.linspace(1 / 3, 1.0, 21)
    est = stats.estimated_accuracy(bin_counts(conf, edges), edges)
    assert abs(est - conf.mean()) <= (edges[1] - edges[0]) / 2
    stderr = np.sqrt(correct.mean() * (1 - correct.mean()) / conf.size)
    assert abs(est - correct.mean()) <= 4 * stderr


def test_every_statistic_rises_monotonically_with_the_shift(reference: np.ndarray) -> None:
    edges = quantile_edges(reference)
    ref_h = bin_counts(reference, edges)
    shifts = [0.0, 0.1, 0.2, 0.4, 0.8, 1.6]
    rows = [
        (stats.psi(ref_h, h), stats.js_distance(ref_h, h), stats.ks_binned(ref_h, h))
        for h in (bin_counts(current(s), edges) for s in shifts)
    ]
    for column in zip(*rows, strict=True):
        assert all(b > a for a, b in itertools.pairwise(column)), column
    level = stats.psi_alarm_level(REF_N, CUR_N, len(edges) - 1, 0.001)
    assert rows[0][0] < level < rows[2][0]  # no drift: below; shift 0.2 sd: above


@pytest.mark.parametrize("window", [60, 600])
def test_calibrated_alarm_levels_hold_the_false_alarm_rate(
    reference: np.ndarray, window: int
) -> None:
    """With no drift, each calibrated level fires on about alpha of the windows, whatever
    the window size (a fixed PSI threshold would not)."""
    alpha, trials = 0.05, 400
    edges = quantile_edges(reference)
    bins = len(edges) - 1
    ref_h = bin_counts(reference, edges)
    rng = np.random.default_rng(5)
    psi_level = stats.psi_alarm_level(REF_N, window, bins, alpha)
    js_level = stats.js_alarm_level(REF_N, window, bins, alpha)
    ks_level = stats.ks_alarm_level(REF_N, window, alpha)
    fired = np.zeros(3)
    for _ in range(trials):
        h = bin_counts(rng.normal(0.0, 1.0, window), edges)
        fired += [
            stats.psi(ref_h, h) > psi_level,
            stats.js_distance(ref_h, h) > js_level,
            stats.ks_binned(ref_h, h) > ks_level,
        ]
    rates = fired / trials
    assert 0.01 <= rates[0] <= 0.11, rates
    # JS's level uses the small-shift approximation JSD ~ PSI / 8, loose on 60 samples in
    # 16 bins (many empty bins): stated tolerance, at most three times alpha.
    assert 0.01 <= rates[1] <= 3 * alpha, rates
    assert rates[2] <= 0.08, rates  # binned KS is conservative


def test_bad_histograms_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="reference's edges"):
        stats.psi([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="no samples"):
        stats.js_distance([1, 2], [0, 0])
    with pytest.raises(ValueError, match="non-negative"):
        stats.ks_binned([1, -2], [1, 1])
    with pytest.raises(ValueError, match="one more edge"):
        stats.estimated_accuracy([1, 2], [0.0, 1.0])
