"""Synthetic telemetry for the fleet simulator: pure functions, no I/O.

A simulated camera draws its window histograms from the release's reference profile
(the bins real agents use), optionally shifted the way a park changes at night: darker,
flatter frames, lower model confidence and a skewed class mix. ``drift`` in [0, 1] sets
how far; 0 reproduces the reference distribution up to sampling noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from protocols import (
    CameraWindow,
    DesiredState,
    Histogram,
    Percentiles,
    ReferenceProfile,
    ReleaseStatus,
    ReportedState,
    ShadowSummary,
    TelemetryWindow,
    Transition,
)
from protocols.manifest import INPUT_STAT_NAMES

# How far (as a share of the bins) each feature moves at drift 1.0; negative: downwards.
FEATURE_SHIFT: dict[str, float] = {
    "brightness": -0.6,
    "contrast": -0.4,
    "sharpness": -0.3,
    "saturation": -0.5,
}
CONFIDENCE_SHIFT = -0.35
EMBEDDING_SHIFT = 0.3
CLASS_SKEW = 0.5  # at drift 1.0, half the predictions fall to the first label


@dataclass(frozen=True)
class DriftPlan:
    """Which devices drift, from which window on, and how strongly.

    The first ``round(fraction * n_devices)`` devices drift (so labels and screenshots
    are predictable); the level ramps linearly from 0 to ``magnitude`` over
    ``ramp_windows`` windows after ``after_windows`` windows.
    """

    fraction: float = 0.0
    magnitude: float = 0.0
    after_windows: int = 0
    ramp_windows: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"drift fraction {self.fraction} must be within [0, 1]")
        if not 0.0 <= self.magnitude <= 1.0:
            raise ValueError(f"drift magnitude {self.magnitude} must be within [0, 1]")
        if self.after_windows < 0 or self.ramp_windows < 1:
            raise ValueError("after_windows must be >= 0 and ramp_windows >= 1")

    def drifts(self, device_index: int, n_devices: int) -> bool:
        return device_index < round(self.fraction * n_devices)

    def level(self, device_index: int, n_devices: int, window_index: int) -> float:
        if not self.drifts(device_index, n_devices) or window_index < self.after_windows:
            return 0.0
        ramp = min(1.0, (window_index - self.after_windows + 1) / self.ramp_windows)
        return self.magnitude * ramp


def shift_pmf(pmf: Sequence[float], shift: float) -> list[float]:
    """Move probability mass by ``shift`` bins (fractional; negative: to lower bins).

    Mass that would leave the range piles up in the end bins, as agents bin outliers.
    """
    n = len(pmf)
    out = [0.0] * n
    for i, mass in enumerate(pmf):
        pos = min(max(i + shift, 0.0), n - 1.0)
        lo = math.floor(pos)
        frac = pos - lo
        out[lo] += mass * (1.0 - frac)
        if frac > 0.0:
            out[lo + 1] += mass * frac
    return out


def normalised(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        return [1.0 / len(counts)] * len(counts)
    return [c / total for c in counts]


def sample_hist(rng: np.random.Generator, hist: Histogram, shift_share: float, n: int) -> list[int]:
    pmf = shift_pmf(normalised(hist.counts), shift_share * len(hist.counts))
    return [int(c) for c in rng.multinomial(n, pmf)]


def class_pmf(reference: dict[str, float], drift: float) -> dict[str, float]:
    labels = sorted(reference)
    base = normalised([reference[k] for k in labels])
    skew = CLASS_SKEW * drift
    return {
        k: (1 - skew) * p + (skew if i == 0 else 0.0)
        for i, (k, p) in enumerate(zip(labels, base, strict=True))
    }


def default_profile(
    bins: int = 10, labels: Sequence[str] = ("cat", "dog", "empty")
) -> ReferenceProfile:
    """A plausible reference for devices that run no release yet (bell-shaped bins)."""

    def bell(lo: float, hi: float, centre: float = 0.5) -> Histogram:
        step = (hi - lo) / bins
        counts = [
            100.0 * math.exp(-(((i + 0.5) / bins - centre) ** 2) / 0.04) + 1 for i in range(bins)
        ]
        return Histogram(edges=[lo + i * step for i in range(bins + 1)], counts=counts)

    ranges = {
        "brightness": (0.0, 255.0),
        "contrast": (0.0, 128.0),
        "sharpness": (0.0, 6.0),
        "saturation": (0.0, 1.0),
    }
    return ReferenceProfile(
        sample_count=1000,
        class_counts={label: 100.0 for label in labels},
        confidence=bell(0.0, 1.0, centre=0.85),
        input_stats={name: bell(*ranges[name]) for name in INPUT_STAT_NAMES},
        embedding_mean=[0.0, 0.0],
        embedding_axes=[[1.0, 0.0], [0.0, 1.0]],
        embedding_hists=[bell(-3.0, 3.0), bell(-3.0, 3.0)],
    )


def camera_window(
    rng: np.random.Generator,
    profile: ReferenceProfile,
    camera_id: str,
    drift: float,
    frames: int,
    seconds: float,
    latency_ms: float = 9.0,
) -> CameraWindow:
    """One camera's summary over ``seconds`` with ``frames`` inferred frames."""
    pmf = class_pmf(profile.class_counts, drift)
    labels = list(pmf)
    counts = rng.multinomial(frames, [pmf[k] for k in labels])
    p50 = latency_ms * float(rng.uniform(0.9, 1.1))
    return CameraWindow(
        camera_id=camera_id,
        state="up",
        frames_captured=frames + frames // 10,
        frames_inferred=frames,
        frames_skipped=frames // 10,
        capture_fps=(frames + frames // 10) / seconds,
        inference_fps=frames / seconds,
        frame_age_ms=Percentiles(p50=p50 * 1.5, p95=p50 * 3, p99=p50 * 4),
        inference_ms=Percentiles(p50=p50, p95=p50 * 1.6, p99=p50 * 2.1),
        e2e_ms=Percentiles(p50=p50 * 2, p95=p50 * 3.2, p99=p50 * 4),
        class_counts={k: int(c) for k, c in zip(labels, counts, strict=True)},
        confidence_hist=sample_hist(rng, profile.confidence, CONFIDENCE_SHIFT * drift, frames),
        input_hists={
            name: sample_hist(rng, hist, FEATURE_SHIFT.get(name, 0.0) * drift, frames)
            for name, hist in profile.input_stats.items()
        },
        embedding_hists=[
            sample_hist(rng, hist, EMBEDDING_SHIFT * drift * (1 if i % 2 == 0 else -1), frames)
            for i, hist in enumerate(profile.embedding_hists)
        ],
    )


def shadow_summary(
    rng: np.random.Generator, window: TelemetryWindow, release_id: str, agreement: float
) -> ShadowSummary:
    """The candidate mirrored on every inferred frame of ``window``, agreeing on a share."""
    frames = sum(c.frames_inferred for c in window.cameras)
    counts: dict[str, int] = {}
    for cam in window.cameras:
        for label, n in cam.class_counts.items():
            counts[label] = counts.get(label, 0) + n
    p50 = float(rng.uniform(8.0, 10.0))
    return ShadowSummary(
        release_id=release_id,
        frames_compared=frames,
        agreements=int(rng.binomial(frames, agreement)) if frames else 0,
        class_counts=counts,
        latency_ms=Percentiles(p50=p50, p95=p50 * 1.6, p99=p50 * 2.1),
    )


def telemetry_window(
    rng: np.random.Generator,
    profile: ReferenceProfile,
    *,
    device_id: str,
    seq: int,
    start: datetime,
    seconds: float,
    camera_ids: Sequence[str],
    drift: float,
    fps: float = 5.0,
    release_id: str | None = None,
    model_version: str | None = None,
    shadow_release_id: str | None = None,
    shadow_agreement: float = 0.95,
) -> TelemetryWindow:
    """One window; with ``shadow_release_id`` it carries the shadow comparison too."""
    frames = max(1, round(fps * seconds))
    window = TelemetryWindow(
        device_id=device_id,
        seq=seq,
        release_id=release_id,
        model_version=model_version,
        window_start=start,
        window_end=start + timedelta(seconds=seconds),
        cameras=[camera_window(rng, profile, c, drift, frames, seconds) for c in camera_ids],
        cpu_percent=float(rng.uniform(10, 40)),
        rss_bytes=int(rng.integers(120, 180)) * 1024 * 1024,
    )
    if shadow_release_id is None:
        return window
    shadow = shadow_summary(rng, window, shadow_release_id, shadow_agreement)
    return window.model_copy(update={"shadow": shadow})


def reported_after(
    current: ReportedState,
    desired: DesiredState,
    model_version: str,
    now: datetime,
    reject: bool = False,
) -> ReportedState:
    """What a well-behaved agent reports once it acted on ``desired``.

    ``reject``: the release fails its smoke test; the agent keeps what it ran.
    """
    if desired.release_id is None:
        return current.model_copy(update={"desired_revision": desired.revision, "updated_at": now})
    stage = "failed" if reject else "healthy"
    status = ReleaseStatus(
        release_id=desired.release_id, model_version=model_version, stage=stage, since=now
    )
    old = current.active.release_id if current.active else None
    transition = Transition(
        from_release_id=old,
        to_release_id=desired.release_id,
        ok=not reject,
        reason="smoke test failed (simulated)" if reject else desired.mode,
        at=now,
    )
    update: dict[str, object] = {
        "desired_revision": desired.revision,
        "last_transition": transition,
        "updated_at": now,
    }
    if desired.mode == "shadow":
        update["shadow"] = status
    elif reject:
        update["shadow"] = None
    else:
        update.update(active=status, previous_release_id=old, shadow=None)
    return current.model_copy(update=update)


@dataclass(frozen=True)
class SimConfig:
    devices: int = 10
    prefix: str = "sim"
    cameras: int = 1
    window_seconds: float = 60.0  # length of backfilled windows
    interval: float = 60.0  # real seconds between live windows (also their length)
    windows: int = 0  # per device, backfill included; 0: until stopped
    backfill: int = 0  # windows per device dated in the past, sent first
    fps: float = 5.0
    drift: DriftPlan = field(default_factory=DriftPlan)
    camera_faults: float = 0.0  # share of devices whose last camera is reconnecting
    reject_releases: frozenset[str] = frozenset()
    shadow_agreement: float = 0.95  # share of frames a shadowed candidate agrees on
    seed: int = 0


def device_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def device_labels(config: SimConfig, index: int) -> dict[str, str]:
    """Labels that make the fleet look like parks: 8 devices a park, day or night."""
    night = config.drift.drifts(index, config.devices)
    return {
        "park": f"park{index // 8 + 1}",
        "camera": "ptz" if index % 3 == 0 else "fixed",
        "condition": "night" if night else "day",
    }
