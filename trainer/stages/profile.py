"""The ``profile`` stage: the drift reference profile on a fixed sample of the training
split, and the golden inputs of the on-device smoke test, both from the primary artifact."""

from __future__ import annotations

from dataclasses import dataclass

from protocols import GoldenInput, ReferenceProfile

from ..inference import predict
from ..profile import golden_inputs, pick_golden_records, reference_profile
from ..runner import Figure, RunContext
from .data import Splits
from .evaluate import Evaluated


@dataclass(frozen=True)
class Profiled:
    profile: ReferenceProfile
    goldens: list[GoldenInput]
    embedding_dim: int

    def figures(self) -> dict[str, Figure]:
        return {"sample_count": self.profile.sample_count, "golden_inputs": len(self.goldens),
                "embedding_dim": self.embedding_dim}


def profile_stage(ctx: RunContext) -> Profiled:
    s, splits, evaluated = ctx.settings, ctx[Splits], ctx[Evaluated]
    # A fixed sample (by file hash, which is unrelated to content) of the training split.
    sample = sorted(splits.train, key=lambda r: r.sha256)[: s.profile_images]
    pred = predict(evaluated.model, sample, splits.spec, with_input_stats=True)
    profile = reference_profile(
        pred,
        splits.labels,
        evaluated.calibration.temperature,
        confidence_bins=s.confidence_bins,
        stat_bins=s.profile_bins,
        components=s.pca_components,
    )
    goldens = golden_inputs(evaluated.model, pick_golden_records(splits.test, s.golden_count),
                            splits.spec, s.golden_atol)
    return Profiled(profile, goldens, int(pred.embeddings.shape[1]))


__all__ = ["Profiled", "profile_stage"]
