"""The statistics of a whole fleet at once (``drift.fleet``, ``drift.fleet_verdicts``) are
the per-summary ones (``compare.compare``, ``compare.window_drifted``,
``verdicts.baseline_holds``), figure for figure, on random fleets:
shifted and unshifted devices, too few frames, a class never seen, windows on other
bins, several cameras per window, per-feature thresholds (pure logic, synthetic data)."""

from __future__ import annotations

import json
from collections import deque
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from control_plane.config.drift import DriftSettings, FeatureThreshold
from control_plane.drift import analyser, collect, fleet, learning, synthetic
from control_plane.drift import baseline as bl
from control_plane.drift.collect import DeviceWindows
from control_plane.drift.compare import compare, window_drifted
from control_plane.drift.fleet_verdicts import baseline_holds_many
from control_plane.drift.summary import Summary
from control_plane.drift.verdicts import baseline_holds
from control_plane.store.models import DriftBaseline

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def random_window(ref: Any, rng: np.random.Generator, seq: int) -> dict[str, Any]:
    w = synthetic.window(ref, f"cam-{seq}", seq, rng=rng, start=T0,
                         frames=int(rng.choice([5, 29, 30, 80, 400])),
                         shift=float(rng.choice([0.0, 0.0, 0.3, 1.5])))
    cam = w["cameras"][0]
    roll = rng.random()
    if roll < 0.1:  # a class never seen in this window
        cam["class_counts"]["dog"] = 0
    elif roll < 0.15:  # bins of another profile: left out
        cam["embedding_hists"] = cam["embedding_hists"][:1]
    elif roll < 0.25:  # a second camera, and an idle one
        other = synthetic.window(ref, "x", seq, rng=rng, start=T0, frames=40)["cameras"][0]
        idle = {**other, "camera_id": "yard",
                "confidence_hist": [0] * len(other["confidence_hist"])}
        w["cameras"] += [{**other, "camera_id": "door"}, idle]
    return w


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("seed", range(4))
def test_fleet_statistics_are_the_per_summary_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = synthetic.profile(seed=seed, bins=int(rng.choice([4, 10, 16])))
    settings = DriftSettings(
        min_samples=30, alert_windows=4,
        thresholds={"input.brightness": FeatureThreshold(alpha=0.01, min_psi=0.05),
                    "classes": FeatureThreshold(alpha=0.05)})
    windows = [random_window(ref, rng, i) for i in range(160)]
    summaries = []
    for d in range(40):
        s = Summary.empty(ref)
        for w in windows[d * 4 : d * 4 + int(rng.integers(0, 5))]:
            s.add_window(w)
        summaries.append(s)

    want = [compare(ref, s, settings) for s in summaries]
    assert canonical(fleet.compare_many(ref, summaries, settings)) == canonical(want)
    verdicts = [window_drifted(ref, w, settings) for w in windows]
    assert fleet.windows_drifted(ref, windows, settings) == verdicts
    # Only some judged (a device's latest N of the windows read): the others None.
    judge = (rng.random(len(windows)) < 0.4).tolist()
    assert fleet.windows_drifted(ref, windows, settings, judge=judge) == [
        v if j else None for v, j in zip(verdicts, judge, strict=True)]
    # Not a fleet of one kind: judged and unjudged, drifted and calm, both present.
    assert {True, False, None} <= set(verdicts)
    assert {s["judged"] for s in want} == {True, False}
    assert {s["drifted"] for s in want if s["judged"]} == {True, False}


@pytest.mark.parametrize("seed", range(3))
def test_windows_of_one_camera_each_give_the_per_window_verdicts(seed: int) -> None:
    """A camera a window, the usual fleet (its windows' counts are its cameras' rows as
    they are), some of them on another profile's bins: the verdicts of one at a time."""
    rng = np.random.default_rng(seed)
    ref = synthetic.profile(seed=seed, bins=10)
    settings = DriftSettings(min_samples=30)
    windows = []
    for i in range(200):
        w = random_window(ref, rng, i)
        w["cameras"] = w["cameras"][:1]
        windows.append(w)
    verdicts = [window_drifted(ref, w, settings) for w in windows]
    assert fleet.windows_drifted(ref, windows, settings) == verdicts
    assert {True, False, None} <= set(verdicts)
    assert not all(Summary.empty(ref).fits(w) for w in windows)


def test_negative_counts_are_refused_as_one_at_a_time() -> None:
    ref = synthetic.profile()
    w = synthetic.window(ref, "cam-a", 0, rng=np.random.default_rng(0), start=T0, frames=100)
    w["cameras"][0]["input_hists"]["brightness"][0] = -1
    s = Summary.empty(ref)
    s.add_window(w)
    with pytest.raises(ValueError, match="non-negative"):
        compare(ref, s, DriftSettings())
    with pytest.raises(ValueError, match="non-negative"):
        fleet.compare_many(ref, [s], DriftSettings())


def learned(ref: Any, rng: np.random.Generator, n: int, shift: float,
            regions: bool = False) -> bl.Fit:
    cams = [{**synthetic.window(ref, "x", i, rng=rng, start=T0, frames=60,
                                shift=shift)["cameras"][0], "window_minutes": 1.0,
             **(synthetic.regions(rng, 60) if regions else {})}
            for i in range(n)]
    fit = bl.learn(ref, cams, min_samples=30, block=2, recent=3)
    assert fit is not None
    return fit


@pytest.mark.parametrize(("seed", "rule"), [(4, "windows"), (1, "windows"), (2, "merged")])
def test_fleet_baseline_verdicts_are_the_per_device_ones(seed: int, rule: str) -> None:
    rng = np.random.default_rng(seed)
    ref = synthetic.profile(seed=seed, bins=10)
    # More windows than N: the older ones count for the class mix only.
    settings = DriftSettings(min_samples=30, alert_windows=4, alert_drifted_windows=2,
                             alert_rule=rule, mix_windows=7)
    fits = [learned(ref, rng, 24, s) for s in (0.0, 1.0)]
    fits.append(learned(ref, rng, 24, 0.0, regions=True))
    recent, baselines = [], []
    for d in range(30):
        ws = [random_window(ref, rng, d * 10 + i) for i in range(int(rng.integers(0, 9)))]
        for w in ws:  # cameras in two conditions, some at night; some with region
            for cam in w["cameras"]:  # telemetry, some of it zoomed
                cam["condition"] = str(rng.choice(["day", "night"]))
                if rng.random() < 0.5:
                    cam.update(synthetic.regions(rng, 60, float(rng.choice([1.0, 1.35]))))
        have: dict[tuple[str, str], DriftBaseline] = {}
        for key in [("gate", "day"), ("gate", "night"), ("door", "day")]:
            roll = rng.random()
            if roll < 0.2:
                continue  # still learning
            fit = fits[int(roll * 10) % 3]
            counts = dict(fit.counts)
            if roll > 0.9:  # a baseline on other bins: that feature is not judged
                counts["confidence"] = counts["confidence"][:-1]
            have[key] = DriftBaseline(id=d * 10 + len(have), device_id=f"cam-{d}",
                                      camera_id=key[0], condition=key[1], release_id="r",
                                      counts=counts, levels=bl.fit_json(fit),
                                      window_minutes=fit.window_minutes, learned_from=T0,
                                      learned_to=T0)
        recent.append(ws)
        baselines.append(have)

    want = [baseline_holds(ref, ws, b, settings) for ws, b in zip(recent, baselines, strict=True)]
    got = baseline_holds_many(ref, recent, baselines, settings)
    assert canonical(got) == canonical(want)
    # As the analysis reads them (``learning.active``): counts packed as ``array('d')``,
    # which the verdicts join as bytes, levels parsed.
    packed = [{k: learning.ActiveBaseline(b.id or 0, b.version, b.window_minutes,
                                          learning._packed(b.counts), bl.levels_of(b.levels))
               for k, b in have.items()} for have in baselines]
    got = baseline_holds_many(ref, recent, packed, settings)  # type: ignore[arg-type]
    assert canonical(got) == canonical(want)
    cams = [c for dev in want for c in dev["cameras"]]
    assert {c["state"] for c in cams} == {"active", "learning"}
    assert {c["holds"] for c in cams if c["state"] == "active"} == {True, False}
    assert any(c.get("class_mix") for c in cams)  # baselines with region telemetry
    assert max(c["windows"] for c in cams) <= settings.alert_windows
    if rule == "windows":  # zoomed windows are driven by their region features
        assert any(c["driver"] and c["driver"]["feature"].startswith(("regions.", "scene."))
                   for c in cams)


def test_a_release_in_chunks_is_the_release_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Devices judged a chunk at a time (memory stays bounded) give the same reports."""
    rng = np.random.default_rng(7)
    ref = synthetic.profile()
    settings = DriftSettings(min_samples=30, alert_windows=3, alert_drifted_windows=2)
    fit = learned(ref, rng, 24, 0.0)
    per_device, baselines = {}, {}
    for d in range(11):
        dev = DeviceWindows(Summary.empty(ref), deque(maxlen=3), T0, T0)
        for i in range(4):
            w = random_window(ref, rng, d * 10 + i)
            dev.summary.add_window(w)
            dev.recent.append(w)
        per_device[f"cam-{d:02d}"] = dev
        if d % 3:
            baselines[f"cam-{d:02d}"] = {("gate", "any"): DriftBaseline(
                id=d, device_id=f"cam-{d:02d}", camera_id="gate", condition="any",
                release_id="r", counts=fit.counts, levels=bl.fit_json(fit),
                window_minutes=fit.window_minutes, learned_from=T0, learned_to=T0)}

    def reports() -> str:
        devices, fleet_report = analyser.release_reports("r", ref, per_device, settings,
                                                         {"cam-03"}, baselines)
        return canonical([[r.device_id, r.drifted, r.statistics] for r in
                          [*devices, fleet_report]])

    at_once = reports()
    monkeypatch.setattr(analyser, "CHUNK_DEVICES", 4)
    assert reports() == at_once


def test_windows_binned_as_read_give_the_reports_binned_in_the_analysis() -> None:
    """``collect`` bins each latest window as it reads it (single precision, an idle
    camera as zeros, a window on other bins not at all: it is left out); the analysis
    given those rows reports what it reports binning the windows itself."""
    rng = np.random.default_rng(11)
    ref = synthetic.profile()
    settings = DriftSettings(min_samples=30, alert_windows=3, alert_drifted_windows=2)
    template = Summary.empty(ref)
    windows = [random_window(ref, rng, i) for i in range(80)]
    rows = [collect.binned(template, w) for w in windows]
    assert [r is not None for r in rows] == [template.fits(w) for w in windows]
    assert any(r is None for r in rows)
    kept = [(w, r) for w, r in zip(windows, rows, strict=True) if r is not None]
    got = fleet.camera_rows(ref, [w for w, _ in kept], [r for _, r in kept])
    want = fleet.camera_rows(ref, [w for w, _ in kept])
    assert np.array_equal(got.mat, want.mat) and np.array_equal(got.window, want.window)
    assert got.fits.all() and want.fits.all()

    fit = learned(ref, rng, 24, 0.0)
    per_device, baselines = {}, {}
    for d in range(9):
        dev = DeviceWindows(Summary.empty(ref), deque(maxlen=3), T0, T0)
        for w, r in kept[d * 3 : d * 3 + 3]:
            dev.summary.add_window(w)
            dev.recent.append(w)
            dev.recent_rows.append(r)
        per_device[f"cam-{d}"] = dev
        baselines[f"cam-{d}"] = {("gate", "any"): DriftBaseline(
            id=d, device_id=f"cam-{d}", camera_id="gate", condition="any", release_id="r",
            counts=fit.counts, levels=bl.fit_json(fit), window_minutes=fit.window_minutes,
            learned_from=T0, learned_to=T0)}

    def reports() -> str:
        devices, fleet_report = analyser.release_reports("r", ref, per_device, settings,
                                                         (), baselines)
        return canonical([[r.device_id, r.drifted, r.statistics] for r in
                          [*devices, fleet_report]])

    as_read = reports()
    for dev in per_device.values():
        dev.recent_rows = []
    assert reports() == as_read
