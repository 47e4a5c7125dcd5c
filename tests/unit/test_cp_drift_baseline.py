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


def camera(rng: np.random.Generator, shift: float = 0.0, distinct: int = 10) -> dict[str, Any]:
    """One camera window of ``distinct`` frames, each seen REPEAT times."""
    cam = synthetic.window(REF, "d", 1, rng=rng, shift=shift, frames=distinct, start=T0,
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


def test_a_feature_with_too_few_windows_to_fit_its_level_is_not_judged() -> None:
    """A quiet camera: of its 60 baseline windows 7 hold enough crops (a busy minute),
    too few replays to fit a level. The level for independent crops would fire on most
    of its busy windows; the feature is not judged against that baseline instead."""
    rng = np.random.default_rng(6)
    quiet = [camera(rng, distinct=1) for _ in range(53)]  # 15 crops: under min_samples
    busy = [camera(rng) for _ in range(7)]
    fit = bl.learn(REF, quiet[:30] + busy + quiet[30:], min_samples=30, block=3)
    assert fit is not None and fit.windows == 7  # a window without crop features adds none
    assert not any(name.startswith(("embedding.", "input.")) for name in fit.levels)
    assert "7 windows" in fit.notes["embedding.0"]
    assert sum(fit.counts["confidence"]) == 7 * 150  # its counts are kept
    assert rate(fit, rng, bl.window_alpha(30, 1.0, 8)) == 0.0
    # With more busy windows the level is fitted from them and holds the false-alarm rate.
    fit = bl.learn(REF, quiet + busy + [camera(rng) for _ in range(23)], min_samples=30,
                   block=3)
    assert fit is not None and "embedding.0" in fit.levels and not fit.notes
    assert rate(fit, rng, 0.001, n=200) < 0.05


def drifting(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[dict[str, Any]]:
    """Consecutive windows of a scene that changes slowly (AR(1) in the shift), plus
    ``shift``: neighbouring windows are alike, as a camera's are."""
    latent, out = 0.0, []
    for _ in range(n):
        latent = 0.9 * latent + float(rng.normal(0.0, 0.3))
        out.append(camera(rng, shift + abs(latent)))
    return out


def test_merged_windows_get_their_own_fitted_level_and_keep_the_false_alarm_rate() -> None:
    rng = np.random.default_rng(3)
    fit = bl.learn(REF, drifting(rng, 200), min_samples=30, block=5, recent=5)
    assert fit is not None
    lv = next(iter(fit.levels.values()))
    assert lv.recent_windows == 5 and lv.recent_scale is not None and lv.recent_dof is not None
    alpha = 0.001
    fresh = drifting(rng, 400)
    runs = [fresh[i:i + 5] for i in range(0, 400, 5)]
    plain = {k: bl.Level(v.scale, v.dof, v.bins) for k, v in fit.levels.items()}

    def exceeded(levels: dict[str, bl.Level]) -> float:
        return float(np.mean([v is not None and v.drifted for v in (
            bl.judge_recent(REF, fit.counts, levels, run, alpha=alpha, min_samples=30,
                            min_psi=0.0) for run in runs)]))

    # One window's level applied to five merged windows fires far too often; the level
    # fitted on merged runs of the baseline does not.
    assert exceeded(plain) > 0.2
    assert exceeded(fit.levels) < 0.05


def test_a_lasting_small_change_is_seen_by_merged_windows_before_single_ones() -> None:
    rng = np.random.default_rng(4)
    fit = bl.learn(REF, [camera(rng) for _ in range(200)], min_samples=30, block=3, recent=5)
    assert fit is not None
    alpha = bl.window_alpha(30, 1.0, len(fit.levels))
    shifted = [camera(rng, 0.8) for _ in range(5)]
    single = [bl.judge(REF, fit.counts, fit.levels, c, alpha=alpha, min_samples=30,
                       min_psi=0.0) for c in shifted]
    merged = bl.judge_recent(REF, fit.counts, fit.levels, shifted, alpha=alpha,
                             min_samples=30, min_psi=0.0)
    assert sum(v is not None and v.drifted for v in single) < 3  # K of N would miss it
    assert merged is not None and merged.drifted and merged.feature is not None
    assert merged.statistic is not None and merged.level is not None
    assert merged.statistic > merged.level


def test_levels_stored_before_merged_windows_still_load() -> None:
    rng = np.random.default_rng(5)
    fit = bl.learn(REF, [camera(rng) for _ in range(60)], min_samples=30, block=3, recent=5)
    assert fit is not None
    stored = bl.fit_json(fit)
    assert bl.levels_of(stored) == fit.levels
    old = {k: {"scale": v["scale"], "dof": v["dof"], "bins": v["bins"]}
           for k, v in stored.items()}
    loaded = bl.levels_of(old)
    assert all(lv.recent_scale is None for lv in loaded.values())
    # Without a merged fit the merged level falls back to the single window's.
    any_level = next(iter(loaded.values()))
    assert any_level.alarm(1e4, 500, 1e-3, 0.0, recent=True) == any_level.alarm(1e4, 500, 1e-3,
                                                                                 0.0)


def test_the_alert_rule_chooses_k_single_windows_or_merged_windows() -> None:
    from control_plane.config.drift import DriftSettings
    from control_plane.drift import verdicts
    from control_plane.store.models import DriftBaseline

    rng = np.random.default_rng(6)
    fit = bl.learn(REF, [camera(rng) for _ in range(200)], min_samples=30, block=3, recent=5)
    assert fit is not None
    base = DriftBaseline(id=1, device_id="d", camera_id="gate", condition="day",
                         release_id="r", counts=fit.counts, levels=bl.fit_json(fit),
                         learned_from=T0, learned_to=T0)
    # A lasting change that one window at a time seldom shows (at most 1 of 5 here).
    recent = [{"cameras": [camera(rng, 1.5)]} for _ in range(5)]
    key = (base.camera_id, "day")
    k_of_n = verdicts.baseline_holds(REF, recent, {key: base}, DriftSettings())
    merged = verdicts.baseline_holds(REF, recent, {key: base},
                                     DriftSettings(alert_rule="merged"))
    assert not k_of_n["holds"] and merged["holds"]
    driver = merged["cameras"][0]["driver"]
    assert driver["exceeded"] and driver["statistic"] > driver["level"]


def _true_rates(rng: np.random.Generator, replays: int, scale: float, dof: float,
                alpha: float, fits: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Fits of a level from ``replays`` draws of an exact ``scale * chi2(dof)``: each
    fit's true rate of exceeding its level over ``alpha``, and its level over the true one."""
    from scipy import stats as st

    true_level = scale * st.chi2.isf(alpha, dof)
    rates, ratios = [], []
    for _ in range(fits):
        fitted = bl._fit_level(scale * rng.chisquare(dof, replays), 10)
        assert fitted is not None
        level = bl.Level(*fitted, bins=2).factor(alpha)
        rates.append(st.chi2.sf(level / scale, dof) / alpha)
        ratios.append(level / true_level)
    return np.array(rates), np.array(ratios)


def test_a_level_fitted_from_few_replays_is_seldom_far_too_calm() -> None:
    """The level is a quantile far in the tail, extrapolated from the replays' spread: from
    8 replays of an exact scaled chi-square the plain moment fit lets a third of its
    baselines' windows through over 100 times as often as alpha (a camera in alarm for
    hours); at the variance's upper confidence bound few do, and from 240 replays (a
    production baseline's) the level rises about 10 %."""
    rng = np.random.default_rng(7)
    alpha = bl.window_alpha(30, 1.0, 17)
    for scale, dof in ((10.0, 4.0), (8.0, 10.0)):
        rates, _ = _true_rates(rng, 8, scale, dof, alpha)
        assert np.mean(rates > 100) < 0.05
        rates, ratios = _true_rates(rng, 240, scale, dof, alpha, fits=100)
        assert np.mean(rates > 10) < 0.03
        assert 1.0 < float(np.median(ratios)) < 1.2


def test_a_baseline_of_short_spells_over_days_holds_its_rate_on_new_days() -> None:
    # A rare condition's baseline is learned from its windows over days (``baseline_pool``):
    # spells of 20 windows, each day's light a little different, one series in receipt
    # order. Each replay leaves out its window's spell (the block covers it), so the
    # levels hold the day-to-day variation a future day meets; a baseline of one long
    # spell never saw it and fires on new days many times as often.
    pooled_rates, one_rates = [], []
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        light = np.clip(rng.normal(0.0, 0.5, 40), -0.9, 0.9)  # each day's shift
        pooled = bl.learn(REF, [camera(rng, light[d]) for d in range(6) for _ in range(20)],
                          min_samples=30, block=20)
        one = bl.learn(REF, [camera(rng, light[6]) for _ in range(120)], min_samples=30,
                       block=20)
        assert pooled is not None and one is not None
        for fit, rates in ((pooled, pooled_rates), (one, one_rates)):
            rates.append(np.mean([rate(fit, rng, 0.001, light[d], n=10)
                                  for d in range(10, 40)]))
    # alpha 0.001 per feature, 8 features: about 0.008 per window
    assert max(pooled_rates) < 0.03
    assert np.mean(one_rates) > 5 * np.mean(pooled_rates)
