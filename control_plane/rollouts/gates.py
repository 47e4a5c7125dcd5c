"""Health gates of one wave: pure evaluation of device progress and telemetry windows.

Gates, in order; the model gates are judged only once every acknowledged device has
sent ``min_windows`` windows of the new release:

- ``ack``: every online device reported the release (offline ones are pending until
  their deadline, neither blocking nor passing the wave);
- ``telemetry``: enough windows of the new release from every acknowledged device;
- ``error_rate`` and ``latency_p95``: the new release against the previous release on
  the same devices (in shadow mode: the candidate against the serving model on the
  same frames);
- ``class_shift``: PSI between the predicted-class distributions, failing only when
  above both ``max_class_psi`` and the null level for these sample sizes (with no
  shift, PSI ~ (1/n + 1/m) * chi2(k - 1); docs/drift.md);
- ``agreement`` (shadow mode): share of frames where candidate and serving model agree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from scipy import stats

from ..config.rollout_policy import GatePolicy

GateStatus = Literal["pass", "fail", "wait", "skip"]
WaveOutcome = Literal["running", "passed", "failed"]


@dataclass(frozen=True)
class GateResult:
    name: str
    status: GateStatus
    detail: str
    value: float | None = None
    limit: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceProgress:
    device_id: str
    state: str  # a RolloutDevice state
    online: bool
    released_at: datetime | None
    acked_at: datetime | None
    online_since: datetime | None = None


@dataclass
class ModelStats:
    """Mergeable run-time statistics of one model over some windows."""

    frames: int = 0
    errors: int = 0
    latency_weighted: float = 0.0  # sum of p95 * frames, for a frames-weighted mean
    latency_frames: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)

    def add(self, frames: int, errors: int, p95: float | None, counts: Mapping[str, int]) -> None:
        self.frames += frames
        self.errors += errors
        if p95 is not None and frames > 0:
            self.latency_weighted += p95 * frames
            self.latency_frames += frames
        for label, n in counts.items():
            self.class_counts[label] = self.class_counts.get(label, 0) + int(n)

    @property
    def error_rate(self) -> float | None:
        seen = self.frames + self.errors
        return self.errors / seen if seen else None

    @property
    def latency_p95(self) -> float | None:
        return self.latency_weighted / self.latency_frames if self.latency_frames else None


@dataclass
class WaveTelemetry:
    """What the windows of a wave's devices say, aggregated over the devices."""

    windows: dict[str, int] = field(default_factory=dict)  # per device
    candidate: ModelStats = field(default_factory=ModelStats)
    baseline: ModelStats = field(default_factory=ModelStats)
    compared: int = 0  # shadow mode: frames both models saw
    agreements: int = 0


def _cameras(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    cams = payload.get("cameras") or []
    return [c for c in cams if isinstance(c, Mapping)]


def _p95(block: Any) -> float | None:
    if isinstance(block, Mapping) and isinstance(block.get("p95"), int | float):
        return float(block["p95"])
    return None


def add_active_window(stats: ModelStats, payload: Mapping[str, Any]) -> None:
    """Add the serving model's numbers of one stored ``TelemetryWindow`` payload."""
    for cam in _cameras(payload):
        stats.add(int(cam.get("frames_inferred", 0)), int(cam.get("errors", 0)),
                  _p95(cam.get("inference_ms")), cam.get("class_counts") or {})


def add_candidate_window(
    telemetry: WaveTelemetry, device_id: str, payload: Mapping[str, Any], mode: str,
    release_id: str,
) -> bool:
    """Add one window of a wave device if it shows ``release_id`` running (active mode:
    serving; shadow mode: shadowing). True when it counted."""
    if mode == "shadow":
        shadow = payload.get("shadow")
        if not isinstance(shadow, Mapping) or shadow.get("release_id") != release_id:
            return False
        compared = int(shadow.get("frames_compared", 0))
        telemetry.candidate.add(compared, int(shadow.get("errors", 0)),
                                _p95(shadow.get("latency_ms")), shadow.get("class_counts") or {})
        telemetry.compared += compared
        telemetry.agreements += int(shadow.get("agreements", 0))
        add_active_window(telemetry.baseline, payload)  # the serving model, same frames
    else:
        if payload.get("release_id") != release_id:
            return False
        add_active_window(telemetry.candidate, payload)
    telemetry.windows[device_id] = telemetry.windows.get(device_id, 0) + 1
    return True


def overdue(device: DeviceProgress, policy: GatePolicy, now: datetime) -> str | None:
    """``failed`` or ``expired`` when a pending device ran out of time, else None."""
    if device.state != "pending" or device.released_at is None:
        return None
    if device.online:
        since = max(device.released_at, device.online_since or device.released_at)
        if (now - since).total_seconds() > policy.ack_timeout_s:
            return "failed"
    elif (now - device.released_at).total_seconds() > policy.offline_deadline_s:
        return "expired"
    return None


def ack_gate(devices: Sequence[DeviceProgress]) -> GateResult:
    if not devices:
        return GateResult("ack", "pass", "no device left in this wave (superseded)")
    failed = sorted(d.device_id for d in devices if d.state == "failed")
    if failed:
        return GateResult("ack", "fail", f"{len(failed)} device(s) failed: {_ids(failed)}",
                          float(len(failed)), 0.0)
    return ack_gate_of(Counter((d.state, d.online) for d in devices))


def ack_gate_of(counts: Mapping[tuple[str, bool], int]) -> GateResult:
    """The ack gate from the number of devices per (row state, online), none failed."""
    total = sum(counts.values())
    acked = counts.get(("acknowledged", True), 0) + counts.get(("acknowledged", False), 0)
    planned = counts.get(("planned", True), 0) + counts.get(("planned", False), 0)
    waiting = counts.get(("pending", True), 0)
    offline = counts.get(("pending", False), 0)
    expired = counts.get(("expired", True), 0) + counts.get(("expired", False), 0)
    summary = f"{acked}/{total} acknowledged, {offline} offline pending, {expired} expired"
    if planned or waiting:
        return GateResult("ack", "wait", f"{summary}, {planned + waiting} to come")
    if acked == 0:
        if offline:
            return GateResult("ack", "wait", f"{summary}: every device is offline")
        return GateResult("ack", "fail", f"{summary}: no device came online before its deadline")
    return GateResult("ack", "pass", summary, float(acked), float(total))


def telemetry_gate(
    devices: Sequence[DeviceProgress], windows: Mapping[str, int], policy: GatePolicy,
    now: datetime,
) -> GateResult:
    need = policy.min_windows
    if need == 0:
        return GateResult("telemetry", "skip", "min_windows is 0: acknowledgement only")
    acked = [d for d in devices if d.state == "acknowledged"]
    short = [d for d in acked if windows.get(d.device_id, 0) < need]
    if not short:
        return GateResult("telemetry", "pass", f"{need}+ window(s) from {len(acked)} device(s)")
    late = sorted(
        d.device_id for d in short
        if d.acked_at is not None
        and (now - d.acked_at).total_seconds() > policy.health_timeout_s
    )
    if late:
        return GateResult(
            "telemetry", "fail",
            f"no {need} window(s) within {policy.health_timeout_s:g}s from {_ids(late)}",
        )
    return GateResult("telemetry", "wait", f"{len(short)} device(s) below {need} window(s)")


def error_rate_gate(t: WaveTelemetry, policy: GatePolicy) -> GateResult:
    new = t.candidate.error_rate
    if new is None:
        return GateResult("error_rate", "fail", "the new release inferred no frames")
    base = t.baseline.error_rate
    limit = (base or 0.0) + policy.max_error_rate_increase
    against = f"baseline {base:.4f}" if base is not None else "no baseline"
    status: GateStatus = "pass" if new <= limit else "fail"
    return GateResult("error_rate", status, f"{new:.4f} vs {against}", new, limit)


def latency_gate(t: WaveTelemetry, policy: GatePolicy) -> GateResult:
    new, base = t.candidate.latency_p95, t.baseline.latency_p95
    if new is None:
        return GateResult("latency_p95", "skip", "the new release reported no latency")
    if base is None:
        return GateResult("latency_p95", "skip", f"{new:.2f} ms; no baseline to compare", new)
    limit = base * policy.max_latency_ratio + policy.latency_slack_ms
    status: GateStatus = "pass" if new <= limit else "fail"
    return GateResult("latency_p95", status, f"{new:.2f} ms vs baseline {base:.2f} ms",
                      new, limit)


def class_shift(
    new: Mapping[str, int], base: Mapping[str, int], alpha: float
) -> tuple[float, float, float]:
    """(PSI, its null level at ``alpha`` for these sample sizes, chi-square p-value)."""
    labels = sorted(set(new) | set(base))
    n, m = sum(new.values()), sum(base.values())
    if len(labels) < 2 or n == 0 or m == 0:
        return 0.0, math.inf, 1.0
    # +0.5 per cell keeps PSI finite when a class is missing on one side.
    p = [(new.get(lb, 0) + 0.5) / (n + 0.5 * len(labels)) for lb in labels]
    q = [(base.get(lb, 0) + 0.5) / (m + 0.5 * len(labels)) for lb in labels]
    psi = sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True))
    level = (1 / n + 1 / m) * float(stats.chi2.ppf(1 - alpha, len(labels) - 1))
    table = [[new.get(lb, 0) + 0.5 for lb in labels], [base.get(lb, 0) + 0.5 for lb in labels]]
    pvalue = float(stats.chi2_contingency(table, correction=False).pvalue)
    return psi, level, pvalue


def frames_needed(labels: int, policy: GatePolicy) -> int:
    """New-release frames before the class-shift gate may pass: enough that the
    candidate's share of the null level is at most half of ``max_class_psi``."""
    if labels < 2:
        return 0
    return math.ceil(2 * float(stats.chi2.ppf(1 - policy.alpha, labels - 1))
                     / policy.max_class_psi)


def class_shift_gate(t: WaveTelemetry, policy: GatePolicy, give_up: bool = False) -> GateResult:
    """Fails when PSI is above both ``max_class_psi`` and the null level. Otherwise it waits
    until the new release classified ``frames_needed`` frames (passing sooner would wave
    any model through on a handful of frames), and fails if that takes longer than the
    health timeout (``give_up``)."""
    if not t.baseline.class_counts:
        return GateResult("class_shift", "skip", "no baseline class counts to compare")
    new, base = t.candidate.class_counts, t.baseline.class_counts
    if not new:
        return GateResult("class_shift", "fail", "the new release predicted no classes")
    psi, level, pvalue = class_shift(new, base, policy.alpha)
    detail = (f"PSI {psi:.3f} (limit {policy.max_class_psi:g}, null level {level:.3f}, "
              f"chi-square p {pvalue:.2g}); new {dict(sorted(new.items()))}"
              f" vs {dict(sorted(base.items()))}")[:900]
    if psi > max(policy.max_class_psi, level):
        return GateResult("class_shift", "fail", detail, psi, max(policy.max_class_psi, level))
    need = frames_needed(len(set(new) | set(base)), policy)
    if sum(new.values()) < need:
        if give_up:
            return GateResult("class_shift", "fail", f"fewer than {need} frames within "
                              f"health_timeout_s (raise it, or alpha): {detail}", psi, level)
        return GateResult("class_shift", "wait", f"{need} frames needed: {detail}", psi, level)
    return GateResult("class_shift", "pass", detail, psi, max(policy.max_class_psi, level))


def agreement_gate(t: WaveTelemetry, policy: GatePolicy) -> GateResult:
    if t.compared == 0:
        return GateResult("agreement", "fail", "the candidate compared no frames")
    share = t.agreements / t.compared
    status: GateStatus = "pass" if share >= policy.min_agreement else "fail"
    return GateResult("agreement", status, f"{t.agreements}/{t.compared} frames agree",
                      share, policy.min_agreement)


def evaluate_wave(
    mode: str, devices: Sequence[DeviceProgress], telemetry: WaveTelemetry,
    policy: GatePolicy, now: datetime,
) -> list[GateResult]:
    """Every gate's result for the wave now; later gates only once earlier ones pass."""
    results = [ack_gate(devices)]
    if results[-1].status != "pass":
        return results
    results.append(telemetry_gate(devices, telemetry.windows, policy, now))
    if results[-1].status != "pass":  # "skip": acknowledgement only
        return results
    give_up = any(d.acked_at is not None
                  and (now - d.acked_at).total_seconds() > policy.health_timeout_s
                  for d in devices if d.state == "acknowledged")
    results += [error_rate_gate(telemetry, policy), latency_gate(telemetry, policy),
                class_shift_gate(telemetry, policy, give_up)]
    if mode == "shadow":
        results.append(agreement_gate(telemetry, policy))
    return results


def outcome(results: Sequence[GateResult]) -> WaveOutcome:
    if any(r.status == "fail" for r in results):
        return "failed"
    if any(r.status == "wait" for r in results):
        return "running"
    return "passed"


def _ids(ids: Sequence[str], shown: int = 5) -> str:
    more = len(ids) - shown
    return ", ".join(ids[:shown]) + (f" and {more} more" if more > 0 else "")
