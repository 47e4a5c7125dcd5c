"""The ``export`` stage: ``model.onnx`` from the trained model, and the torch / ONNX Runtime
parity check on validation images (a ParityError stops the run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import ImageDataset
from ..export import ParityResult, check_parity, export_onnx
from ..runner import Figure, RunContext
from .data import Scanned, Splits
from .train import Trained

PARITY_IMAGES = 32


@dataclass(frozen=True)
class Exported:
    model_path: Path
    parity: ParityResult

    def figures(self) -> dict[str, Figure]:
        return {"parity_max_abs_diff": self.parity.max_abs_diff,
                "size_bytes": self.model_path.stat().st_size}


def export_stage(ctx: RunContext) -> Exported:
    splits, model = ctx[Splits], ctx[Trained].outcome.model
    path = ctx.out_path("model.onnx")
    metadata = {
        "labels": splits.labels,
        "input_spec": splits.spec.model_dump(mode="json"),
        "dataset_version": ctx[Scanned].scan.version,
    }
    export_onnx(model, path, ctx.settings.input_size, metadata=metadata)
    # An int8 model left by an earlier run in this folder belongs to another fp32 model.
    ctx.out_path("model.int8.onnx").unlink(missing_ok=True)
    parity_set = ImageDataset(splits.val[:PARITY_IMAGES], splits.spec)
    batch = np.stack([parity_set[i][0].numpy() for i in range(len(parity_set))])
    return Exported(path, check_parity(model, path, batch, ctx.settings.parity_atol))


__all__ = ["Exported", "export_stage"]
