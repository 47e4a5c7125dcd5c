"""How a clip's agent tracks score against its ground truth: the region accuracy
benchmark's pure arithmetic (matching, per-track accuracy, counts per window, intervals),
apart from the clips and the agent that produce a ``Run``."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from edge_agent.regions.boxes import Box, iou

MIN_WIDTH = 0.10  # per-track accuracy counts animals at least this share of the frame wide
MATCH_IOU = 0.3


@dataclass
class AgentTrack:
    label: str | None = None
    boxes: dict[int, Box] = field(default_factory=dict)  # frame -> box while confirmed


@dataclass
class Truth:
    label: str
    boxes: dict[int, Box] = field(default_factory=dict)
    widths: list[float] = field(default_factory=list)


@dataclass
class Run:
    """One clip through the agent: its tracks, the truth, window counts."""

    frames: int = 0
    agent: dict[int, AgentTrack] = field(default_factory=lambda: defaultdict(AgentTrack))
    truth: dict[int, Truth] = field(default_factory=dict)
    windows: list[tuple[Counter[str], Counter[str]]] = field(default_factory=list)
    whole: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: float = 0.0


def match(run: Run) -> tuple[dict[int, int], list[int]]:
    """Each truth track's agent track (most frames at IoU >= MATCH_IOU), and the agent's
    animal tracks that match no truth animal in any frame (false animals)."""
    best: dict[int, tuple[int, int]] = {}
    matched_agent: set[int] = set()
    for aid, a in run.agent.items():
        for tid, t in run.truth.items():
            n = sum(1 for k, b in a.boxes.items()
                    if k in t.boxes and iou(b, t.boxes[k]) >= MATCH_IOU)
            if n:
                matched_agent.add(aid)
                if n > best.get(tid, (0, -1))[0]:
                    best[tid] = (n, aid)
    false = [aid for aid, a in run.agent.items() if aid not in matched_agent and a.boxes]
    return {tid: aid for tid, (_, aid) in best.items()}, false


@dataclass(frozen=True)
class TrackScore:
    tracks: int  # truth animals at least MIN_WIDTH wide (median)
    found: int
    right: int  # found, and the agent's final vote is the true label
    whole_right: int  # whole-frame vote over the frames it was in view

    @property
    def accuracy(self) -> float:
        return self.right / max(self.found, 1)

    @property
    def strict(self) -> float:
        return self.right / max(self.tracks, 1)


def score_tracks(run: Run) -> TrackScore:
    matched, _ = match(run)
    tracks = found = right = whole = 0
    for tid, t in run.truth.items():
        if float(np.median(t.widths)) < MIN_WIDTH or len(t.boxes) < 5:
            continue
        tracks += 1
        votes = run.whole.get(tid)
        whole += bool(votes) and votes.most_common(1)[0][0] == t.label
        if tid in matched:
            found += 1
            right += run.agent[matched[tid]].label == t.label
    return TrackScore(tracks, found, right, whole)


def tracks_per_animal(run: Run) -> tuple[int, int]:
    """Scored animals found, and the agent's animal tracks among them: each agent track
    goes to the truth animal it overlaps in most frames (IoU >= MATCH_IOU), so an animal
    broken into pieces (lost and started again, or a part of it tracked on its own) has
    several. Equal numbers: one track per animal."""
    scored = {tid for tid, t in run.truth.items()
              if float(np.median(t.widths)) >= MIN_WIDTH and len(t.boxes) >= 5}
    owner: Counter[int] = Counter()
    for a in run.agent.values():
        overlap = Counter({tid: sum(1 for k, b in a.boxes.items()
                                    if k in t.boxes and iou(b, t.boxes[k]) >= MATCH_IOU)
                           for tid, t in run.truth.items()})
        best = overlap.most_common(1)
        if best and best[0][1] and best[0][0] in scored:
            owner[best[0][0]] += 1
    return len(owner), sum(owner.values())


def count_error(run: Run) -> tuple[float, float, int]:
    """Mean |agent - truth| / truth of animals per window (windows with an animal), the
    share of those windows within 10 %, and how many there were."""
    errors = [abs(sum(a.values()) - sum(t.values())) / sum(t.values())
              for a, t in run.windows if sum(t.values())]
    if not errors:
        return 0.0, 0.0, 0
    return float(np.mean(errors)), float(np.mean([e <= 0.10 for e in errors])), len(errors)


def pooled_count_error(runs: list[Run]) -> tuple[float, float]:
    """Over every window: sum |agent - truth| / sum truth (a window of two animals off by
    one weighs as much as one animal, not as 50 %), and (agent - truth) / truth overall."""
    pairs = [(sum(a.values()), sum(t.values())) for r in runs for a, t in r.windows]
    total = sum(t for _, t in pairs)
    if not total:
        return 0.0, 0.0
    return (sum(abs(a - t) for a, t in pairs) / total,
            (sum(a for a, _ in pairs) - total) / total)


def share_interval(k: int, n: int) -> tuple[float, float]:
    """95 % Clopper-Pearson interval of k successes in n."""
    if n == 0:
        return 0.0, 1.0
    ci = stats.binomtest(k, n).proportion_ci(0.95)
    return float(ci.low), float(ci.high)


def rate_upper(k: int, hours: float) -> float:
    """One-sided 95 % upper bound of a Poisson rate per hour with k events seen."""
    return float(stats.chi2.ppf(0.95, 2 * (k + 1)) / 2 / hours)


def pooled(runs: list[Run]) -> TrackScore:
    scores = [score_tracks(r) for r in runs]
    return TrackScore(*(sum(getattr(s, f) for s in scores)
                        for f in ("tracks", "found", "right", "whole_right")))
