"""The class-mix test (``drift.class_mix``): a window-limited CUSUM on the distinct animals
per class of a camera's latest windows, tempered by the baseline's own dispersion.

Pure logic on synthetic counts: a few animals a minute (Poisson 4), 45 % cats by day. The
false-alarm checks count alarm episodes over long streams without a change at a loose
level (so that a miscalibration shows in a few thousand windows) and compare them with
the run length the level stands for; the power checks use the level of one false alarm
per camera per 30 days over 17 features (1-minute windows)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from control_plane.config.drift import DriftSettings
from control_plane.drift import baseline as bl
from control_plane.drift import class_mix, synthetic
from control_plane.drift.region_features import region_counts, without_regions
from control_plane.drift.verdicts import baseline_holds
from control_plane.store.models import DriftBaseline

CAT = 0.45
ALPHA = bl.window_alpha(30, 1.0, 17)  # about 1.4e-6: h = 13.5
WINDOWS = 15  # mix_windows


def stream(rng: np.random.Generator, n: int, cat: float = CAT, twice: float = 0.0
           ) -> np.ndarray:
    """``n`` windows of animals per class (cat, dog); ``twice``: the share of animals
    counted twice (one animal split into two tracks: overdispersion)."""
    out = np.zeros((n, 2))
    for t in range(n):
        total = rng.poisson(4.0)
        cats = rng.binomial(total, cat)
        dogs = total - cats
        cats += rng.binomial(cats, twice)
        dogs += rng.binomial(dogs, twice)
        out[t] = cats, dogs
    return out


def alarms(ref: np.ndarray, dispersion: float, x: np.ndarray, level: float,
           limit: int = WINDOWS) -> np.ndarray:
    """Per window: the statistic over the latest ``limit`` windows exceeds ``level``."""
    return np.array([class_mix.statistic(ref, dispersion, list(x[max(0, t - limit + 1):t + 1]))
                     > level for t in range(len(x))])


def episodes(alarm: np.ndarray) -> int:
    return int(np.sum(alarm[1:] & ~alarm[:-1]) + (1 if alarm.size and alarm[0] else 0))


def test_the_baseline_mix_itself_gives_nothing_and_a_complete_change_a_lot() -> None:
    ref = np.array([450.0, 550.0])
    assert class_mix.statistic(ref, 1.0, [np.array([4.5, 5.5])] * 5) == 0.0
    assert class_mix.statistic(ref, 1.0, []) == 0.0
    assert class_mix.statistic(ref, 1.0, [np.zeros(2)] * 5) == 0.0
    only_cats = class_mix.statistic(ref, 1.0, [np.array([4.0, 0.0])] * 5)
    # 20 cats at 0.9 against 0.45: 20 ln 2, less the mixture's ln 2 and a little for
    # the baseline's uncertainty ...
    assert 12.5 < only_cats < 20 * np.log(2) - np.log(2)
    # ... which is large for a baseline of 20 animals: their mix is known less well.
    assert class_mix.statistic(ref / 50, 1.0, [np.array([4.0, 0.0])] * 5) < 0.6 * only_cats
    # Dispersion tempers the evidence: two tracks per animal are one animal's evidence.
    assert class_mix.statistic(ref, 2.0, [np.array([8.0, 0.0])] * 5) < only_cats
    # The statistic is the best run ending now: old calm windows do not dilute it.
    calm = [np.array([2.0, 2.0])] * 10
    assert class_mix.statistic(ref, 1.0, calm + [np.array([4.0, 0.0])] * 5) == pytest.approx(
        only_cats)


def test_the_level_is_the_log_of_the_run_length_alpha_stands_for() -> None:
    assert class_mix.level(ALPHA) == pytest.approx(np.log(30 * 24 * 60 * 17))
    assert 13 < class_mix.level(ALPHA) < 14


@pytest.mark.parametrize("twice", [0.0, 0.6])
def test_false_alarms_stay_under_the_run_length_of_the_level(twice: float) -> None:
    """A loose level (run length 200 windows) on 6,000 windows with no change, its
    baseline and dispersion fitted from 240 windows of the same camera: at most 30
    episodes (200 windows each), also when most animals are counted twice."""
    rng = np.random.default_rng(7)
    base = stream(rng, 240, twice=twice)
    dispersion = class_mix.fit(base, 5)
    assert dispersion is not None
    if twice:
        assert dispersion > 1.3  # the doubled counts are seen as overdispersion
    x = stream(rng, 6000, twice=twice)
    found = episodes(alarms(base.sum(axis=0), dispersion, x, np.log(200)))
    assert found <= 6000 / 200


def test_without_the_dispersion_doubled_counts_raise_false_alarms() -> None:
    """The same overdispersed stream judged as if animals were independent alarms more
    than the level allows: the fitted dispersion is what holds it."""
    rng = np.random.default_rng(7)
    base = stream(rng, 240, twice=0.9)
    x = stream(rng, 6000, twice=0.9)
    found = episodes(alarms(base.sum(axis=0), 1.0, x, np.log(200)))
    assert found > 6000 / 200


def test_only_cats_is_found_within_a_few_windows_at_the_30_day_budget() -> None:
    """At 4 animals a minute, 45 % cats, only cats (one in 25 misread as a dog): found in
    every trial, at a median 6 windows (the information a minute holds; docs/drift.md)."""
    rng = np.random.default_rng(1)
    level = class_mix.level(ALPHA)
    delays = []
    for _ in range(40):
        base = stream(rng, 240)
        dispersion = class_mix.fit(base, 5)
        assert dispersion is not None
        calm, shifted = stream(rng, 30), stream(rng, 40, cat=0.96)
        alarm = alarms(base.sum(axis=0), dispersion, np.concatenate([calm, shifted]), level)
        assert not alarm[:30].any()
        assert alarm[30:].any()
        delays.append(int(np.flatnonzero(alarm[30:])[0]) + 1)
    assert np.median(delays) <= 7


def test_fit_needs_animals_and_two_classes() -> None:
    assert class_mix.fit(np.array([[1.0, 1.0], [2.0, 0.0]]), 5) is None  # 4 animals
    assert class_mix.fit(np.array([[5.0], [6.0]]), 5) is None  # one class
    assert class_mix.fit(np.array([[5.0, 5.0], [6.0, 4.0], [5.0, 5.0]]), 5) == 1.0
    # Runs of windows merged show serial correlation that single windows hide.
    blocks = np.repeat(np.array([[4.0, 0.0], [0.0, 4.0]] * 10), 5, axis=0)
    assert class_mix.fit(blocks, 5) > class_mix.fit(blocks, 1)  # type: ignore[operator]


# -- through a learned baseline and the verdicts ----------------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def camera(ref: Any, rng: np.random.Generator, i: int, cat: float) -> dict[str, Any]:
    cam: dict[str, Any] = synthetic.window(ref, "gate", i, rng=rng, start=T0,
                                           frames=60)["cameras"][0]
    cam.update(synthetic.regions(rng, 60))
    total = int(rng.poisson(4.0))
    cats = int(rng.binomial(total, cat))
    cam["animals"] = {"cat": cats, "dog": total - cats}
    cam["condition"] = "day"
    return cam


def test_a_new_mix_drives_the_verdict_and_the_k_of_n_windows_stay_the_latest_n() -> None:
    rng = np.random.default_rng(5)
    ref = synthetic.profile(seed=5, bins=10)
    fit = bl.learn(ref, [{**camera(ref, rng, i, CAT), "window_minutes": 1.0}
                         for i in range(60)], min_samples=30, block=2, recent=5,
                   mix_span=15)
    assert fit is not None
    lv = fit.levels[class_mix.FEATURE]
    assert lv.dispersion is not None and lv.dispersion >= 1.0
    assert lv.pooled == 15  # 60 windows hold 4 runs of 15 to fit the dispersion at
    short = bl.learn(ref, [{**camera(ref, rng, i, CAT), "window_minutes": 1.0}
                           for i in range(20)], min_samples=30, block=2, recent=5,
                     mix_span=15)
    assert short is not None and short.levels[class_mix.FEATURE].pooled == 5
    assert sum(fit.counts[class_mix.FEATURE]) > 200  # cats and dogs of 60 windows
    stored = bl.levels_of(bl.fit_json(fit))  # the dispersion is stored with the levels
    assert stored[class_mix.FEATURE].dispersion == pytest.approx(lv.dispersion)
    base = DriftBaseline(id=1, device_id="d", camera_id="gate", condition="day",
                         release_id="r", counts=fit.counts, levels=bl.fit_json(fit),
                         window_minutes=1.0, learned_from=T0, learned_to=T0)
    settings = DriftSettings(min_samples=30)

    def windows(cats: list[float]) -> list[dict[str, Any]]:
        return [{"cameras": [camera(ref, rng, 100 + i, c)]} for i, c in enumerate(cats)]

    calm = baseline_holds(ref, windows([CAT] * 15), {("gate", "day"): base}, settings)
    [cam] = calm["cameras"]
    assert not calm["holds"] and cam["windows"] == 5  # K of N: the latest 5 windows
    assert cam["class_mix"]["windows"] == 15 and not cam["class_mix"]["exceeded"]
    cats = baseline_holds(ref, windows([CAT] * 5 + [1.0] * 10), {("gate", "day"): base},
                          settings)
    [cam] = cats["cameras"]
    assert cats["holds"] and cam["driver"]["feature"] == class_mix.FEATURE
    assert cam["driver"]["statistic"] > cam["driver"]["level"] == pytest.approx(
        class_mix.level(cam["alpha"]))
    assert cam["drifted"] < settings.alert_drifted_windows  # no single window showed it
    # A baseline stored before the class mix existed has no such feature.
    old = {k: v for k, v in bl.fit_json(fit).items() if k != class_mix.FEATURE}
    base.levels = old
    before = baseline_holds(ref, windows([1.0] * 15), {("gate", "day"): base}, settings)
    assert before["cameras"][0]["class_mix"] is None


def test_animals_are_those_regions_animals_counts_without_other() -> None:
    rng = np.random.default_rng(2)
    ref = synthetic.profile(seed=2, bins=10)
    labels = ["cat", "dog", "other"]  # a regions model's labels
    cam = camera(ref, rng, 0, CAT) | {"animals": {"cat": 2, "dog": 3, "other": 4}}
    want = region_counts(cam, labels)["regions.animals"][class_mix.animal_classes(labels)]
    assert class_mix.animals(cam, labels).tolist() == want.tolist() == [2.0, 3.0]
    assert class_mix.animals(without_regions(cam), labels) is None  # a whole-frame agent
