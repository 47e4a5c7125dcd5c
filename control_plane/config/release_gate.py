"""The ``[release_gate]`` section: the evaluation a model version needs before it is signed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReleaseGateSettings(BaseModel):
    """What `releases create` demands of a version's metrics (its evaluation, as the
    trainer registered it). A version that falls short is refused, unless the operator
    overrides the gate with a reason, which the audit log keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    require_trainer_gate: bool = Field(
        True,
        description="Refuse versions whose trainer quality gate failed "
        "(quality_gate_passed = 0, e.g. registered with --allow-weak-model).",
    )
    min_metrics: dict[str, float] = Field(
        default_factory=dict,
        description="Minimum of each named metric for every model, e.g. "
        "{test_accuracy = 0.8, test_macro_f1 = 0.75}; a version without the metric is refused.",
    )
    models: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per-model minimums over min_metrics, e.g. "
        "[release_gate.models.petnet] test_accuracy = 0.9.",
    )

    def minimums(self, model_name: str) -> dict[str, float]:
        return {**self.min_metrics, **self.models.get(model_name, {})}
