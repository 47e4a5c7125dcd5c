"""The release gate: whether a model version's evaluation lets it be signed, and two
versions side by side. Pure functions over a version's metrics, plus the comparison's
store reads."""

from __future__ import annotations

from collections.abc import Mapping

from sqlmodel import Session

from protocols import ModelVersionCreate

from ..config import ReleaseGateSettings
from ..errors import InvalidRequestError
from ..schemas import ComparedVersion, MetricDelta, VersionComparison
from ..store.models import ModelVersion
from . import registry

MIN_REASON_CHARS = 8  # an override names why; "ok" or "x" says nothing to the next reader


def gate_failures(metrics: Mapping[str, float], gate: ReleaseGateSettings,
                  model_name: str) -> list[str]:
    """Why ``metrics`` fall short of ``gate`` for ``model_name``; empty when they pass."""
    failures = []
    if gate.require_trainer_gate and metrics.get("quality_gate_passed") == 0.0:
        allowed = " (registered with --allow-weak-model)" if metrics.get(
            "weak_model_allowed") else ""
        failures.append(f"the trainer's quality gate failed{allowed}")
    for name, minimum in sorted(gate.minimums(model_name).items()):
        value = metrics.get(name)
        if value is None:
            failures.append(f"no {name} in its metrics (the gate needs {name} >= {minimum:g})")
        elif not value >= minimum:  # NaN fails too
            failures.append(f"{name} {value:.4g} < {minimum:g}")
    return failures


def version_metrics(row: ModelVersion) -> dict[str, float]:
    return dict(ModelVersionCreate.model_validate(row.spec).metrics)


def check(row: ModelVersion, model_name: str, gate: ReleaseGateSettings,
          override_reason: str | None) -> list[str]:
    """The gate's failures for ``row``; raise when they stand and nobody overrode them
    with a reason. Returns the failures an override let through (for the audit log)."""
    if override_reason is not None and len(override_reason.strip()) < MIN_REASON_CHARS:
        raise InvalidRequestError(
            f"an override needs a reason of at least {MIN_REASON_CHARS} characters (it goes "
            "to the audit log): --reason 'why this version may ship anyway'")
    failures = gate_failures(version_metrics(row), gate, model_name)
    if failures and override_reason is None:
        raise InvalidRequestError(
            f"{model_name} v{row.version} fails the release gate: {'; '.join(failures)}. "
            f"Compare it with `parkwatch versions compare {model_name} champion "
            f"{row.version}`, retrain, or sign it anyway with `parkwatch releases create "
            f"{model_name} --version {row.version} --override-gate --reason '...'` (audited)")
    return failures


def compare(session: Session, model_name: str, a: str, b: str,
            gate: ReleaseGateSettings) -> VersionComparison:
    """Versions ``a`` and ``b`` (numbers or aliases) side by side: every metric either has,
    the difference b - a, and what the release gate says of each."""
    rows = [registry.get_version(session, model_name, ref) for ref in (a, b)]
    ma, mb = (version_metrics(row) for row in rows)
    deltas = [MetricDelta(metric=name, a=ma.get(name), b=mb.get(name),
                          delta=mb[name] - ma[name] if name in ma and name in mb else None)
              for name in sorted(set(ma) | set(mb))]
    sides = []
    for row, metrics in zip(rows, (ma, mb), strict=True):
        spec = ModelVersionCreate.model_validate(row.spec)
        failures = gate_failures(metrics, gate, model_name)
        sides.append(ComparedVersion(
            version=row.version, created_at=row.created_at, created_by=row.created_by,
            labels=spec.labels, dataset_version=spec.lineage.dataset_version,
            gate="; ".join(failures) or "passes"))
    return VersionComparison(model_name=model_name, a=sides[0], b=sides[1], metrics=deltas)
