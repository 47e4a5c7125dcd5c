"""Region telemetry as drift features (pure logic, synthetic windows).

A zoomed camera shows the same crops (each is resized to the model's input), so its crop
features stay where they were; its regions are wider and its scene's edges lie elsewhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from control_plane.drift import baseline as bl
from control_plane.drift import region_features as rf
from control_plane.drift import stats, synthetic
from protocols.messages import EDGE_COLS, EDGE_ROWS, CameraWindow

REF = synthetic.profile()
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FRAMES = 60
KW: dict[str, Any] = {"min_samples": 30, "min_psi": 0.0}


def camera(rng: np.random.Generator, zoom: float = 1.0) -> dict[str, Any]:
    """One regions-mode camera window: crops as ``synthetic.window``'s, and the region
    telemetry of ``FRAMES`` frames of a scene seen at ``zoom``."""
    cam = synthetic.window(REF, "d", 1, rng=rng, frames=FRAMES, start=T0,
                           condition="day")["cameras"][0]
    return {**cam, **synthetic.regions(rng, FRAMES, zoom)}


def test_each_region_field_is_a_feature_on_its_own_bins() -> None:
    cam = camera(np.random.default_rng(0))
    CameraWindow.model_validate(cam)  # the wire's shape
    counts = rf.region_counts(cam, ["cat", "dog", "empty"])
    assert sorted(counts) == ["regions.animals", "regions.per_frame", "regions.width",
                              "scene.background", "scene.edges"]
    assert counts["regions.width"].tolist() == cam["region_width_hist"]
    assert counts["regions.animals"].tolist() == [cam["animals"]["cat"],
                                                  cam["animals"]["dog"], 0]
    assert counts["scene.edges"].size == EDGE_COLS * EDGE_ROWS
    assert counts["scene.background"].tolist() == cam["background_edges"]


def test_windows_without_region_telemetry_have_crop_features_only() -> None:
    cam = camera(np.random.default_rng(1))
    assert rf.region_counts(rf.without_regions(cam), ["cat"]) == {}
    assert set(rf.without_regions(cam)) == set(cam) - set(rf.FIELDS)
    bad = {**cam, "region_width_hist": [1, 2]}  # other bins: that feature is left out
    assert "regions.width" not in rf.region_counts(bad, ["cat"])
    counts = bl.camera_counts(REF, cam, 30)
    assert counts is not None and "regions.width" in counts and "confidence" in counts
    # Too few crops to judge the crop features: the region features are judged alone.
    few = bl.camera_counts(REF, cam, 10_000)
    assert few is not None and "confidence" not in few and "scene.edges" in few
    assert bl.camera_counts(REF, rf.without_regions(cam), 10_000) is None


def baseline(rng: np.random.Generator, windows: list[dict[str, Any]] | None = None
             ) -> tuple[bl.Fit, float]:
    fit = bl.learn(REF, windows or [camera(rng) for _ in range(60)], min_samples=30, block=2)
    assert fit is not None
    return fit, bl.window_alpha(30, 1.0, len(fit.levels))


def test_a_zoomed_camera_is_drifted_on_a_region_feature_where_crops_see_nothing() -> None:
    rng = np.random.default_rng(2)
    fit, alpha = baseline(rng)
    assert {"regions.width", "scene.edges", "regions.animals"} <= set(fit.levels)
    zoomed = [camera(rng, zoom=1.35) for _ in range(10)]
    verdicts = [bl.judge(REF, fit.counts, fit.levels, c, alpha=alpha, **KW) for c in zoomed]
    assert all(v is not None and v.drifted for v in verdicts)
    assert {v.feature for v in verdicts if v is not None} <= {
        "regions.width", "scene.edges", "scene.background"}
    # The crops alone (what drift judged before) see no change in the same windows.
    crops_fit, crops_alpha = baseline(rng, [rf.without_regions(c) for c in
                                            (camera(rng) for _ in range(60))])
    crops = [bl.judge(REF, crops_fit.counts, crops_fit.levels, rf.without_regions(c),
                      alpha=crops_alpha, **KW) for c in zoomed]
    assert sum(v is not None and v.drifted for v in crops) <= 1


def test_unchanged_windows_stay_under_the_region_levels() -> None:
    rng = np.random.default_rng(3)
    fit, alpha = baseline(rng)
    verdicts = [bl.judge(REF, fit.counts, fit.levels, camera(rng), alpha=alpha, **KW)
                for _ in range(100)]
    assert sum(v is not None and v.drifted for v in verdicts) <= 1


def test_a_baseline_learned_before_region_features_judges_crops_only() -> None:
    rng = np.random.default_rng(4)
    old, alpha = baseline(rng, [rf.without_regions(camera(rng)) for _ in range(40)])
    assert not any(name.startswith(("regions.", "scene.")) for name in old.levels)
    v = bl.judge(REF, old.counts, old.levels, camera(rng, zoom=1.35), alpha=alpha, **KW)
    assert v is not None and not v.feature.startswith(("regions.", "scene."))  # type: ignore[union-attr]
    merged = bl.judge_recent(REF, old.counts, old.levels, [camera(rng) for _ in range(3)],
                             alpha=alpha, **KW)
    assert merged is not None


def test_distinct_animals_are_judged_from_a_handful() -> None:
    assert rf.min_count("regions.animals", 30) == rf.MIN_ANIMALS
    assert rf.min_count("regions.width", 30) == 30
    assert rf.min_count("regions.animals", 2) == 2


# A regions-mode model's labels: the animals and 'other' (what is no animal).
OTHERS = REF.model_copy(update={"class_counts": {"cat": 100.0, "dog": 100.0, rf.OTHER: 100.0}})


def busy(rng: np.random.Generator, other: int | None = None) -> dict[str, Any]:
    """A regions-mode window of a busy park: a handful of animals, each classified in a
    dozen frames and all of one label (so the cat/dog share swings from minute to minute),
    and ``other`` regions (people, leaves) beside them; ``other`` given: only those."""
    cam = camera(rng)
    labels = list(OTHERS.class_counts)
    counts = dict.fromkeys(labels, 0)
    if other is None:
        for _ in range(int(rng.integers(1, 5))):
            counts[str(rng.choice([lb for lb in labels if lb != rf.OTHER]))] += int(
                rng.integers(6, 18))
        counts[rf.OTHER] += int(rng.poisson(30))
    else:
        counts[rf.OTHER] = other
    return {**cam, "class_counts": counts}


def test_a_window_of_only_other_regions_is_drifted_on_regions_other() -> None:
    # The level of regions.other is fitted from the baseline's own windows, so a new kind of
    # object (every region 'other') exceeds it, and a busy minute of the same park does not.
    rng = np.random.default_rng(6)
    fit = bl.learn(OTHERS, [busy(rng) for _ in range(60)], min_samples=30, block=2)
    assert fit is not None
    alpha = bl.window_alpha(30, 1.0, len(fit.levels))
    assert "regions.other" in fit.levels
    counts = bl.camera_counts(OTHERS, busy(rng, other=60), 30)
    assert counts is not None and counts["regions.other"].tolist() == [0.0, 60.0]
    level = fit.levels["regions.other"].alarm(sum(fit.counts["regions.other"]), 60.0, alpha,
                                             0.0)
    assert stats.psi(np.array(fit.counts["regions.other"]), counts["regions.other"]) > level
    calm = [bl.judge(OTHERS, fit.counts, fit.levels, busy(rng), alpha=alpha, **KW)
            for _ in range(100)]
    assert sum(v is not None and v.drifted for v in calm) <= 1


def test_regions_other_needs_the_other_label_and_region_telemetry() -> None:
    rng = np.random.default_rng(7)
    cam = busy(rng)
    assert "regions.other" in rf.region_counts(cam, list(OTHERS.class_counts))
    assert "regions.other" not in rf.region_counts(cam, ["cat", "dog"])
    assert rf.region_counts(rf.without_regions(cam), list(OTHERS.class_counts)) == {}


def test_a_moved_view_is_drifted_on_the_background_alone() -> None:
    # Windows alike in everything but the background's outlines (the view zoomed 1.35x
    # off centre): only ``scene.background`` can see it, and it does, window by window.
    rng = np.random.default_rng(8)
    fit, alpha = baseline(rng)
    assert "scene.background" in fit.levels
    moved = [{**camera(rng), "background_edges": synthetic.regions(rng, FRAMES, 1.35)[
        "background_edges"]} for _ in range(10)]
    verdicts = [bl.judge(REF, fit.counts, fit.levels, c, alpha=alpha, **KW) for c in moved]
    assert all(v is not None and v.drifted and v.feature == "scene.background"
               for v in verdicts), verdicts
    # Without the field (an agent older than it) the same windows are not drifted.
    older = [{k: v for k, v in c.items() if k != "background_edges"} for c in moved]
    before = [bl.judge(REF, fit.counts, fit.levels, c, alpha=alpha, **KW) for c in older]
    assert not any(v is not None and v.drifted for v in before)


def test_an_older_agents_windows_are_judged_against_a_newer_baseline_and_back() -> None:
    rng = np.random.default_rng(9)
    fit, alpha = baseline(rng)
    old = {k: v for k, v in camera(rng).items() if k != "background_edges"}
    CameraWindow.model_validate(old)
    counts = bl.camera_counts(REF, old, 30)
    assert counts is not None and "scene.background" not in counts and "scene.edges" in counts
    v = bl.judge(REF, fit.counts, fit.levels, old, alpha=alpha, **KW)
    assert v is not None and v.feature != "scene.background"
    # A baseline learned from older agents' windows has no background level: a newer
    # agent's window is judged on the other features.
    older_fit, older_alpha = baseline(rng, [
        {k: v for k, v in camera(rng).items() if k != "background_edges"} for _ in range(60)])
    assert "scene.background" not in older_fit.levels
    v = bl.judge(REF, older_fit.counts, older_fit.levels, camera(rng), alpha=older_alpha, **KW)
    assert v is not None and v.feature != "scene.background"


def test_a_quiet_minute_of_new_objects_is_judged_on_regions_other() -> None:
    # A minute with fewer regions than min_samples (20 here, all 'other'): too few for the
    # crop features, enough for an animal-or-not question; its level grows with 1 / m, so
    # it takes a clearer change than a busy minute (here: 60 regions exceed, 20 do not).
    assert rf.min_count("regions.other", 30) == rf.MIN_REGIONS_OTHER < 30
    rng = np.random.default_rng(10)
    fit = bl.learn(OTHERS, [busy(rng) for _ in range(60)], min_samples=30, block=2)
    assert fit is not None
    alpha = bl.window_alpha(30, 1.0, len(fit.levels))
    quiet = {**busy(rng, other=20), "confidence_hist": [], "input_hists": {},
             "embedding_hists": []}
    v = bl.judge(OTHERS, fit.counts, fit.levels, quiet, alpha=alpha, **KW)
    assert v is not None and v.feature == "regions.other" and v.level is not None, v
    busier = bl.judge(OTHERS, fit.counts, fit.levels, {**quiet, **busy(rng, other=60)},
                      alpha=alpha, **KW)
    assert busier is not None and busier.drifted and v.level > busier.level > 0
    # As few regions of the park as it was stay under the level.
    calm = [bl.judge(OTHERS, fit.counts, fit.levels, few, alpha=alpha, **KW)
            for few in (_few(busy(rng)) for _ in range(100))]
    assert sum(v is not None and v.drifted and v.feature == "regions.other"
               for v in calm) <= 1


def _few(cam: dict[str, Any]) -> dict[str, Any]:
    """A quiet minute of the same park: about a third of its regions."""
    counts = {k: v // 3 for k, v in cam["class_counts"].items()}
    return {**cam, "class_counts": counts}
