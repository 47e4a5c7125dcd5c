"""The ``judge`` stage: is the evaluated model better than a floor and than guessing?

The verdict (``trainer.quality``) lands in report.json's ``evaluation.quality`` and in
the registration's metrics; the ``write`` stage refuses to write a registration for a
model that fails, unless ``allow_weak_model``.
"""

from __future__ import annotations

import logging

from ..quality import Verdict, judge
from ..runner import RunContext
from .evaluate import Evaluated

log = logging.getLogger(__name__)


def judge_stage(ctx: RunContext) -> Verdict:
    verdict = judge(ctx[Evaluated].test, ctx.settings)
    if not verdict.passed and verdict.allowed:
        log.warning("weak model kept by allow_weak_model: %s", "; ".join(verdict.reasons))
    return verdict


__all__ = ["judge_stage"]
