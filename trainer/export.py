"""ONNX export (opset 17, dynamic batch) and the torch / ONNX Runtime parity check."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .errors import ParityError, TrainerError
from .inference import OnnxModel

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAMES = ("logits", "embedding")


def export_onnx(
    model: nn.Module,
    path: Path,
    input_size: int,
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Write ``model`` as ONNX: input ``input`` (N x 3 x H x W), outputs ``logits``, ``embedding``.

    ``metadata`` is stored as JSON strings in the model's metadata_props, so the
    file says what it is (labels, input spec, dataset version) on its own.
    """
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    dummy = torch.zeros(1, 3, input_size, input_size, dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    try:
        with warnings.catch_warnings():
            # Lite0's asymmetric "same" pads export through a reversed Slice that torch
            # cannot fold; ONNX Runtime folds it when a session loads: the warning is noise.
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(
                cpu_model,
                (dummy,),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *OUTPUT_NAMES)},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        proto = onnx.load(str(tmp))
        for key, value in (metadata or {}).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = f"parkwatch.{key}", json.dumps(value, sort_keys=True)
        proto.producer_name = "parkwatch-trainer"
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp.replace(path)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise TrainerError(f"ONNX export to {path} failed: {exc}") from exc
    return path


@dataclass(frozen=True)
class ParityResult:
    max_abs_diff_logits: float
    max_abs_diff_embedding: float
    samples: int
    atol: float

    @property
    def max_abs_diff(self) -> float:
        return max(self.max_abs_diff_logits, self.max_abs_diff_embedding)

    def summary(self) -> dict[str, float]:
        return {
            "max_abs_diff": self.max_abs_diff,
            "max_abs_diff_logits": self.max_abs_diff_logits,
            "max_abs_diff_embedding": self.max_abs_diff_embedding,
            "samples": float(self.samples),
            "atol": self.atol,
        }


@torch.no_grad()
def check_parity(model: nn.Module, onnx_path: Path, batch: np.ndarray, atol: float) -> ParityResult:  # type: ignore[type-arg]
    """Compare torch (CPU, eval) and ONNX Runtime on ``batch``; ParityError above ``atol``."""
    if len(batch) == 0:
        raise TrainerError("parity check needs at least one input image")
    cpu_model = copy.deepcopy(model).to("cpu").eval()
    t_logits, t_embedding = cpu_model(torch.from_numpy(np.ascontiguousarray(batch, np.float32)))
    o_logits, o_embedding = OnnxModel(onnx_path).run(np.ascontiguousarray(batch, np.float32))
    result = ParityResult(
        max_abs_diff_logits=float(np.abs(t_logits.numpy() - o_logits).max()),
        max_abs_diff_embedding=float(np.abs(t_embedding.numpy() - o_embedding).max()),
        samples=len(batch),
        atol=atol,
    )
    if not result.max_abs_diff <= atol:  # also catches NaN
        raise ParityError(
            f"ONNX model {onnx_path} differs from the torch model by {result.max_abs_diff:.3g} "
            f"(logits {result.max_abs_diff_logits:.3g}, embedding "
            f"{result.max_abs_diff_embedding:.3g}) on {len(batch)} images, above parity_atol "
            f"{atol:g}; the export is wrong (unsupported op?) or the tolerance too tight"
        )
    return result


__all__ = ["INPUT_NAME", "OPSET", "OUTPUT_NAMES", "ParityResult", "check_parity", "export_onnx"]
