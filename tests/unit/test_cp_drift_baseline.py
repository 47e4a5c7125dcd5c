"""Baseline alarm levels fitted from a camera's own windows (pure logic, synthetic data).

Windows of a camera hold repeated frames (an animal stays in view), simulated here as
each of 10 drawn frames counted 15 times: the textbook level, made for 150 independent
frames, then fires on most windows, and the fitted level holds the false-alarm rate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from control_plane.drift import baseline as bl
from control_plane.drift import synthetic

REF = synthetic.profile()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
REPEAT = 15


def camera(rng: np.random.Generator, shift: float = 0.0) -> dict[str, Any]:
    """One camera window of 10 distinct frames, each seen REPEAT times."""
    cam = synthetic.window(REF, "d", 1, rng=rng, shift=shift, frames=10, start=T0,
                           condition="day")["cameras"][0]
    return {**cam,
            "confidence_hist": [x * REPEAT for x in cam["confidence_hist"]],
            "input_hists": {k: [x * REPEAT for x in v] for k, v in cam["input_hists"].items()},
            "embedding_hists": [[x * REPEAT for x in v] for v in cam["embedding_hists"]],
            "class_counts": {k: v * REPEAT for k, v in cam["class_counts"].items()}}


def rate(fit: bl.Fit, rng: np.random.Generator, alpha: float, shift: float = 0.0,
         n: int = 400, fitted: bool = True) -> float:
    levels = fit.levels if fitted else {k: bl.Level(1.0, v.bins - 1, v.bins)
                                        for k, v in fit.levels.items()}
    verdicts = [bl.judge(REF, fit.counts, levels, camera(rng, shift), alpha=alpha,
                         min_samples=30, min_psi=0.0) for _ in range(n)]
    return float(np.mean([v is not None and v.drifted for v in verdicts]))


def test_fitted_levels_hold_the_false_alarm_rate_where_the_textbook_level_fails() -> None:
    rng = np.random.default_rng(0)
    fit = bl.learn(REF, [camera(rng) for _ in range(120)], min_samples=30, block=3)
    assert fit is not None and fit.windows == 120
    alpha = 0.001  # per feature; 8 features: about 0.008 per window
    assert rate(fit, rng, alpha, fitted=False) > 0.3
    assert rate(fit, rng, alpha) < 0.03
    assert all(lv.scale > 2 for name, lv in fit.levels.items() if name != "classes")


def test_a_large_change_exceeds_the_level_and_names_its_feature() -> None:
    rng = np.random.default_rng(1)
    fit = bl.learn(REF, [camera(rng) for _ in range(120)], min_samples=30, block=3)
    assert fit is not None
    alpha = bl.window_alpha(30, 1.0, len(fit.levels))  # one per camera per 30 days
    assert 1e-6 < alpha < 1e-5
    assert rate(fit, rng, alpha, shift=4.0, n=100) > 0.95
    v = bl.judge(REF, fit.counts, fit.levels, camera(rng, 4.0), alpha=alpha, min_samples=30,
                 min_psi=0.0)
    assert v is not None and v.feature is not None and v.statistic is not None
    assert v.level is not None and v.statistic > v.level


def test_too_few_windows_learn_nothing() -> None:
    rng = np.random.default_rng(2)
    assert bl.learn(REF, [camera(rng)], min_samples=30, block=3) is None
