"""A small, budgeted hyper-parameter search: random trials from a grid, picked by validation.

Trial 0 is the configured settings themselves; trials 1..N-1 are drawn without
replacement from :data:`SPACE` by a generator seeded with ``settings.seed``, so
the same settings give the same trials. A trial starts only while the time
budget lasts (the first always runs). The winner has the best validation
accuracy (ties: lower validation loss); its trained model is the one exported,
so the search costs no extra final training.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import TrainerSettings
from .train import TrainOutcome

log = logging.getLogger(__name__)

SPACE: dict[str, list[Any]] = {
    "lr": [1e-3, 2e-3, 3e-3],
    "width_mult": [0.75, 1.0],
    "label_smoothing": [0.0, 0.1],
    "weight_decay": [1e-4, 1e-3],
    "batch_size": [32, 64],
}


def sample_trials(settings: TrainerSettings, trials: int) -> list[dict[str, Any]]:
    """``trials`` parameter sets: the settings' own first, then distinct random grid points."""
    own = {key: getattr(settings, key) for key in SPACE}
    grid = [dict(zip(SPACE, values, strict=True)) for values in itertools.product(*SPACE.values())]
    grid = [g for g in grid if g != own]
    order = np.random.default_rng(settings.seed).permutation(len(grid))
    return [own] + [grid[i] for i in order[: max(trials - 1, 0)]]


@dataclass
class SearchResult:
    best_index: int
    best: TrainOutcome
    best_params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"best_trial": self.best_index, "best_params": self.best_params,
                "trials": self.trials}


def _score(outcome: TrainOutcome) -> tuple[float, float]:
    best = outcome.history[outcome.best_epoch - 1] if outcome.history else None
    return outcome.best_val_accuracy, -(best.val_loss if best else float("inf"))


def run_search(
    settings: TrainerSettings,
    trials: int,
    budget_s: float,
    train: Callable[[TrainerSettings], TrainOutcome],
) -> SearchResult:
    """Train each trial's settings with ``train`` within ``budget_s``; return the best."""
    started = time.monotonic()
    result: SearchResult | None = None
    for index, params in enumerate(sample_trials(settings, trials)):
        elapsed = time.monotonic() - started
        if index > 0 and elapsed >= budget_s:
            log.info("search budget %.0fs spent after %d trial(s)", budget_s, index)
            break
        trial_settings = settings.model_copy(update=params)
        outcome = train(trial_settings)
        record = {"trial": index, "params": params,
                  "val_accuracy": outcome.best_val_accuracy,
                  "best_epoch": outcome.best_epoch, "seconds": round(outcome.seconds, 2)}
        if result is None or _score(outcome) > _score(result.best):
            result = SearchResult(index, outcome, params, result.trials if result else [])
        result.trials.append(record)
        log.info("trial %d %s: val accuracy %.4f", index, params, outcome.best_val_accuracy)
    assert result is not None
    return result


__all__ = ["SPACE", "SearchResult", "run_search", "sample_trials"]
