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
    # Per window, the ids counted: the agent's tracks, the truth's animals.
    window_ids: list[tuple[set[int], set[int]]] = field(default_factory=list)
    window_frames: int = 1
    whole: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    seconds: float = 0.0

    def see_animal(self, frame: int, track_id: int, label: str, box: tuple[int, int, int, int],
                   frame_width: int, visible: float, seen: set[int],
                   seen_truth: Counter[str]) -> None:
        """Record one true animal (``box`` as x, y, w, h) in ``frame``. A window counts an
        animal once it is a third in view (one that only peeks in from the edge or from
        behind the bush is not there yet for anyone): ``seen`` and ``seen_truth`` are that
        window's ids and per-label counts."""
        x, y, w, h = box
        truth = self.truth.setdefault(track_id, Truth(label))
        truth.boxes[frame] = (x, y, x + w, y + h)
        truth.widths.append(w / frame_width)
        if track_id not in seen and visible >= 1 / 3:
            seen.add(track_id)
            seen_truth[label] += 1


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
        whole += votes is not None and bool(votes) and votes.most_common(1)[0][0] == t.label
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


TrackKey = tuple[int, int]  # (clip's place in the pooled list, truth track id)


def track_outcomes(runs: list[Run]) -> dict[TrackKey, bool]:
    """Each scored animal of the pooled clips (``score_tracks``' rule) and whether the
    agent got it right: found, and its track's final vote is the true label."""
    out: dict[TrackKey, bool] = {}
    for i, run in enumerate(runs):
        matched, _ = match(run)
        for tid, t in run.truth.items():
            if float(np.median(t.widths)) < MIN_WIDTH or len(t.boxes) < 5:
                continue
            out[(i, tid)] = tid in matched and run.agent[matched[tid]].label == t.label
    return out


@dataclass(frozen=True)
class Paired:
    """Per-track accuracy of a condition against the reference on the same animals."""

    tracks: int
    reference_right: int
    right: int
    lost: int  # right in the reference, wrong here
    gained: int  # wrong in the reference, right here
    low: float  # 95 % interval of the difference (here - reference), shares
    high: float

    @property
    def difference(self) -> float:
        return (self.right - self.reference_right) / max(self.tracks, 1)


def _wilson(k: int, n: int) -> tuple[float, float]:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def paired_difference(reference: dict[TrackKey, bool], other: dict[TrackKey, bool]) -> Paired:
    """The difference in per-track accuracy between two renderings of the same animals,
    with Newcombe's hybrid score interval for paired proportions (his method 10, from
    Wilson intervals of each share and the phi correlation of the two outcomes), which
    keeps its width when no pair disagrees (120 of 120 both: [-3.1, +3.1] points).
    Refuses outcomes of different animals: they would not be a paired comparison."""
    if reference.keys() != other.keys():
        raise ValueError("the clips hold different animals: pair renderings of the same "
                         "seeds and seconds (the same clips under another condition)")
    n = len(reference)
    if n == 0:
        return Paired(0, 0, 0, 0, 0, -1.0, 1.0)
    both = sum(reference[k] and other[k] for k in reference)
    lost = sum(reference[k] and not other[k] for k in reference)
    gained = sum(other[k] and not reference[k] for k in reference)
    neither = n - both - lost - gained
    p1, p2 = (both + lost) / n, (both + gained) / n
    (l1, u1), (l2, u2) = _wilson(both + lost, n), _wilson(both + gained, n)
    margins = (both + lost) * (gained + neither) * (both + gained) * (lost + neither)
    phi = (both * neither - lost * gained) / np.sqrt(margins) if margins else 0.0
    d = p2 - p1
    low = d - np.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1)
                          + (u1 - p1) ** 2))
    high = d + np.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1)
                           + (p1 - l1) ** 2))
    return Paired(n, both + lost, both + gained, lost, gained, float(low), float(high))
