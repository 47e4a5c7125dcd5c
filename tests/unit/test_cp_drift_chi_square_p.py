"""``stats.chi_square`` takes its p-value from ``scipy.special.chdtrc`` (what
``scipy.stats.chi2.sf`` calls underneath, without its argument handling): the very same
float, so reports keep their values bit for bit."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from control_plane.drift import stats


def test_p_value_is_exactly_chi2_sf() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        classes = int(rng.integers(2, 8))
        ref = rng.integers(0, 500, classes).astype(float)
        cur = rng.integers(0, 200, classes).astype(float)
        ref[0], cur[1] = ref[0] + 1, cur[1] + 1  # both non-empty
        chi = stats.chi_square(ref, cur)
        if chi.dof:
            assert chi.p_value == float(sps.chi2.sf(chi.statistic, chi.dof))
