"""The ``[rollout_policy]`` section: waves, rate, health gates, approval, and what a failed
gate does. Every rollout stores the policy it started with (``Rollout.policy``), so it
keeps its rules when the server's defaults change."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

WaveStep = Annotated[str, Field(pattern=r"^([1-9][0-9]{0,6}|[0-9]{1,3}(\.[0-9]+)?%)$")]


DEFAULT_WAVES = ("1", "10%", "50%", "100%")


GateFailurePolicy = Literal["rollback", "pause"]


class GatePolicy(BaseModel):
    """Health gates a wave must pass before the next one starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ack_timeout_s: float = Field(
        600.0, gt=0, le=7 * 86400,
        description="An online device must report the release active within this many seconds.",
    )
    offline_deadline_s: float = Field(
        86400.0, gt=0, le=90 * 86400,
        description="An offline device stays pending (not failed) this long after its wave "
        "started; then it counts as expired.",
    )
    min_windows: int = Field(
        2, ge=0, le=1000,
        description="Telemetry windows of the new release each acknowledged device must send "
        "before the model gates are judged; 0: acknowledgement only.",
    )
    health_timeout_s: float = Field(
        1800.0, gt=0, le=7 * 86400,
        description="Seconds after its acknowledgement a device has to send min_windows windows.",
    )
    baseline_windows: int = Field(
        10, ge=1, le=1000,
        description="Windows of the previous release per device that form the baseline.",
    )
    max_error_rate_increase: float = Field(
        0.02, ge=0, le=1,
        description="Largest allowed rise of the inference error rate over the baseline.",
    )
    max_latency_ratio: float = Field(
        1.5, ge=1, le=100, description="Largest allowed p95 latency as a multiple of baseline."
    )
    latency_slack_ms: float = Field(
        2.0, ge=0, le=10_000, description="Latency allowed on top of the ratio (timer noise)."
    )
    max_class_psi: float = Field(
        0.25, gt=0, le=100,
        description="Largest PSI between the predicted-class distributions of the new and the "
        "previous model; a shift fails only when it is also above the sample-size-calibrated "
        "null level (see alpha).",
    )
    alpha: float = Field(
        0.001, gt=0, lt=0.5,
        description="False-alarm rate that calibrates the class-shift null level.",
    )
    min_agreement: float = Field(
        0.8, ge=0, le=1,
        description="Shadow mode: least share of frames where candidate and current model agree.",
    )


class RolloutPolicy(BaseModel):
    """How a rollout moves: waves, rate, gates, approval and what a failed gate does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    waves: list[WaveStep] = Field(
        default_factory=lambda: list(DEFAULT_WAVES), min_length=1, max_length=32,
        description="Cumulative wave sizes: a device count ('1') or a share ('10%'). A plan "
        "that stops short of every target gets a final wave with the rest.",
    )
    max_devices_per_minute: int | None = Field(
        600, ge=1, le=1_000_000,
        description="Most devices sent the release per minute; null: no limit.",
    )
    approval_after_wave: int | None = Field(
        None, ge=1, le=32,
        description="Waves after this one start only after `parkwatch rollouts approve`.",
    )
    shadow_phase: bool = Field(
        False,
        description="Run the release in shadow mode on the first wave's devices first "
        "(agreement and class-shift gates) before any device serves it.",
    )
    shadow_fraction: float = Field(
        0.25, ge=0.01, le=1,
        description="Share of the classified frames a shadowing device also runs through the "
        "candidate (CPU cost on the device vs how soon the shadow gates have enough frames).",
    )
    on_gate_failure: GateFailurePolicy = Field(
        "rollback", description="rollback: revert the failed wave, then pause; pause: only pause."
    )
    spread_label: str | None = Field(
        "park", max_length=64,
        description="Early waves take devices round-robin across this label's values.",
    )
    gates: GatePolicy = Field(default_factory=GatePolicy)
