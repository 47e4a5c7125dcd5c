"""The ``shifts`` stage: the primary artifact on the test images under synthetic camera
shifts (night, IR, blur...), with accuracy and PSI against the reference profile.

It runs after ``profile`` because drift is measured with the profile's own bin edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import shift_eval
from ..runner import Figure, RunContext
from .data import Splits
from .evaluate import Evaluated
from .profile import Profiled


@dataclass(frozen=True)
class ShiftsEvaluated:
    shifts: dict[str, Any]  # report.json's evaluation.shifts

    def evaluation_sections(self) -> dict[str, Any]:
        return {"shifts": self.shifts}

    def figures(self) -> dict[str, Figure]:
        if self.shifts.get("skipped"):
            return {"skipped": str(self.shifts["skipped"])}
        return {f"{name}_accuracy": float(r["accuracy"])
                for name, r in self.shifts["shifts"].items()}


def shifts_stage(ctx: RunContext) -> ShiftsEvaluated:
    s, splits, evaluated = ctx.settings, ctx[Splits], ctx[Evaluated]
    return ShiftsEvaluated(shift_eval.shift_stage(
        evaluated.model, splits.test, splits.spec, ctx[Profiled].profile,
        evaluated.calibration.temperature, s.shifts, s.shift_severity, s.seed,
    ))


__all__ = ["ShiftsEvaluated", "shifts_stage"]
