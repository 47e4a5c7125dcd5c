"""The ``[drift]`` section: drift analysis and alerts."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator


class FeatureThreshold(BaseModel):
    """When one feature counts as drifted: its PSI is above both the calibrated alarm level
    (null-distribution quantile at ``alpha`` for the window's sample size) and ``min_psi``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(
        0.001,
        gt=0,
        lt=0.5,
        description="False-alarm rate per feature and window under no drift (sets the "
        "calibrated alarm level of PSI, JS, KS and chi-square).",
    )
    min_psi: float = Field(
        0.02,
        ge=0,
        description="Smallest PSI that counts however large the sample: on huge windows the "
        "calibrated level shrinks towards 0 and would flag shifts too small to matter.",
    )


class DriftSettings(BaseModel):
    """How the control plane analyses drift and raises drift and accuracy alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis_interval_s: float = Field(
        60.0,
        ge=0,
        description="How often `parkwatch serve` (roles all and api) computes drift reports; "
        "0 turns the periodic analysis off (reports on demand only). Run it in one API process.",
    )
    range_minutes: int = Field(
        60, ge=1, le=7 * 24 * 60, description="Sliding time range one drift report covers."
    )
    min_samples: int = Field(
        30,
        ge=1,
        description="Frames a window (or range) needs before it is judged; fewer: not judged.",
    )
    default_threshold: FeatureThreshold = Field(
        default_factory=FeatureThreshold,
        description="Threshold of every feature not named in `thresholds`.",
    )
    thresholds: dict[str, FeatureThreshold] = Field(
        default_factory=dict,
        description="Per-feature thresholds by feature name: confidence, classes, "
        "input.<brightness|contrast|sharpness|saturation>, embedding.<i>.",
    )
    max_accuracy_drop: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Drop of estimated accuracy (reference minus fleet, CBPE) that raises an "
        "accuracy alert.",
    )
    accuracy_from_labels: bool = Field(
        True,
        description="Also raise the accuracy alert from labelled samples: when a camera x "
        "condition with at least `min_labels` labels has its whole confidence interval of "
        "realized accuracy more than `max_accuracy_drop` below the held-out accuracy.",
    )
    min_labels: int = Field(
        20, ge=1, description="Labelled samples a camera x condition needs to be judged."
    )
    accuracy_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="Confidence level of the realized-accuracy interval."
    )
    alert_windows: int = Field(
        5, ge=1, le=1000, description="N: how many of a device's latest windows are looked at."
    )
    alert_drifted_windows: int = Field(
        3, ge=1, description="K: drifted windows among the latest N that make a device drifted."
    )
    alert_rule: Literal["windows", "merged"] = Field(
        "windows",
        description="When a camera x condition with a baseline is drifted: `windows`, K of "
        "its latest N windows each exceed their own level; `merged`, its latest windows "
        "merged (at most N) exceed the level fitted for merged windows (more power for a "
        "lasting change, but on bench/drift_replay.py's real streams more false alarms: "
        "see docs/drift.md).",
    )
    mix_windows: int = Field(
        15,
        ge=1,
        le=1000,
        description="Latest windows of a camera x condition whose distinct animals the "
        "class-mix test adds up (a CUSUM against the baseline's mix, docs/drift.md): a "
        "minute holds a handful of animals, so a new mix shows over several windows; an "
        "analysis reads max(alert_windows, mix_windows) latest windows per device.",
    )
    alert_min_devices: int = Field(
        1, ge=1, description="M: drifted devices (per release) that raise a drift alert."
    )
    baseline_windows: int = Field(
        240,
        ge=10,
        le=10_000,
        description="Windows of one camera in one condition, under a release that is healthy "
        "on its device, that make the camera's production baseline for that condition (at "
        "1-minute windows, four hours of that light: a shorter baseline misses the scene's "
        "slow changes and alarms on them, see bench/drift_replay.py).",
    )
    baseline_block: int = Field(
        20,
        ge=0,
        le=100,
        description="Windows left out on each side of a replayed baseline window when its "
        "alarm levels are fitted (neighbouring windows are alike; leaving them out keeps the "
        "levels honest; at most a quarter of the baseline's windows are left out).",
    )
    false_alarm_days: float = Field(
        30.0,
        gt=0,
        description="Target run length between false drift alarms, per camera: one window "
        "exceeding a baseline level by chance every this many days (over all features).",
    )
    hour_history_days: int = Field(
        14,
        ge=1,
        le=30,
        description="Days of a camera's history (hourly rollups, before today, UTC) that "
        "the hour check reads: a camera x condition without a baseline is drifted when its "
        "latest windows show a light (rain counts as day) the camera never showed at this "
        "hour of the day, one hour either side (an IR filter stuck by day).",
    )
    hour_min_days: int = Field(
        3,
        ge=2,
        le=30,
        description="Days of history with windows at an hour (one hour either side) before "
        "the hour check judges a window at that hour.",
    )
    alert_on_skew: bool = Field(
        False,
        description="Also count a device as drifted when its windows differ from the training "
        "profile (skew). Off: skew is reported, only baseline drift alerts.",
    )
    webhook_url: HttpUrl | None = Field(
        None, description="POSTed a JSON body when an alert opens or resolves; unset: none."
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="Timeout of one webhook POST.")

    @model_validator(mode="after")
    def _k_of_n(self) -> Self:
        if self.alert_drifted_windows > self.alert_windows:
            raise ValueError(
                f"alert_drifted_windows (K={self.alert_drifted_windows}) must be at most "
                f"alert_windows (N={self.alert_windows})"
            )
        return self

    def threshold(self, feature: str) -> FeatureThreshold:
        return self.thresholds.get(feature, self.default_threshold)

    def latest_windows(self) -> int:
        """How many of each device's latest windows an analysis reads: K of N judges the
        latest ``alert_windows``, the class mix the latest ``mix_windows``."""
        return max(self.alert_windows, self.mix_windows)
