"""Ingest as a ratio of the broker's ceiling when the ceiling itself swings: the
arithmetic of ``fleet_ingest.py --rounds`` (no I/O here).

A run alternates ceilings and ingest runs: ceiling, run, ceiling, run, ..., ceiling.
Each run is divided by the mean of the ceilings measured right before and right after it,
so a ceiling that drifts during the run weighs on both neighbours alike; the median over
rounds and its range say how much one run's ratio can be trusted, and the ceilings' own
max / min says whether the broker's ceiling held still at all.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        runs = "run" if self.n == 1 else "runs"
        return f"{self.median:.2f} ({self.low:.2f}-{self.high:.2f}, {self.n} {runs})"


def bracketed(ceilings: Sequence[float], rates: Sequence[float]) -> list[float]:
    """Each run's rate over the mean of the ceilings measured right before and after it
    (``ceilings`` has one more entry than ``rates``: it starts and ends the sequence)."""
    if len(ceilings) != len(rates) + 1:
        raise ValueError(f"{len(rates)} runs need {len(rates) + 1} ceilings around them, "
                         f"not {len(ceilings)}")
    return [rate / ((before + after) / 2)
            for rate, before, after in zip(rates, ceilings, ceilings[1:], strict=False)]


def spread(values: Sequence[float]) -> Spread:
    """The median of ``values`` with their lowest and highest."""
    if not values:
        raise ValueError("no runs to summarise")
    return Spread(statistics.median(values), min(values), max(values), len(values))


def by_label(labels: Sequence[str], values: Sequence[float]) -> dict[str, Spread]:
    """``spread`` of the values of each label, in the order labels first appear."""
    groups: dict[str, list[float]] = {}
    for label, value in zip(labels, values, strict=True):
        groups.setdefault(label, []).append(value)
    return {label: spread(group) for label, group in groups.items()}


def swing(ceilings: Sequence[float]) -> float:
    """The ceilings' highest over their lowest: 1.0 for a ceiling that held still."""
    return max(ceilings) / min(ceilings)


def paired(labels: Sequence[str], rates: Sequence[float], base: str) -> dict[str, Spread]:
    """Each other label's rate over ``base``'s in the same round (runs of a round follow
    each other, so the pair saw the same neighbours): ``spread`` over rounds, per label.
    A round is a run of ``base`` and the runs after it up to the next run of ``base``."""
    ratios: dict[str, list[float]] = {}
    current: float | None = None
    for label, rate in zip(labels, rates, strict=True):
        if label == base:
            current = rate
        elif current is not None:
            ratios.setdefault(label, []).append(rate / current)
    return {label: spread(values) for label, values in ratios.items()}
