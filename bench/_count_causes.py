"""Where a clip's count error comes from, window by window: each animal the agent counted
in a window goes to the truth animal its track overlapped most in that window's frames,
and the difference between the agent's count and the truth's splits into causes.

Too many: ``split`` (a second or third track on one animal), ``stale`` (a track counted
where its animal no longer is: coasting or kept by probes into a window the animal left,
or one that took over a spot after it), ``false`` (a track on no animal in any frame),
``partial`` (an animal the truth does not count in the window: under a third in view).
Too few: ``merged`` (an animal whose only track in the window is another animal's: two
animals as one region, or one track carried onto another animal) and ``missed`` (no
track overlaps it in the window). ``agent - truth`` is the sum of the first four less
the last two, exactly. Apart from the counts: ``carried``, tracks that follow two or more
animals one after another (each for at least ``CARRY_FRAMES``): an id that jumps from one
animal to another, so the labels of the two mix.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields

from _track_score import MATCH_IOU, Run  # bench/ is on sys.path: scripts run from it

from edge_agent.regions.boxes import inside, iou

CARRY_FRAMES = 5
CAUSES = ("split", "stale", "false", "partial", "merged", "missed")


@dataclass
class Causes:
    truth: int = 0
    agent: int = 0
    split: int = 0
    stale: int = 0
    false: int = 0
    partial: int = 0
    merged: int = 0
    missed: int = 0
    carried: int = 0

    def __add__(self, other: Causes) -> Causes:
        return Causes(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def _overlaps(run: Run, aid: int, frames: range) -> Counter[int]:
    """Frames of ``frames`` in which agent track ``aid`` overlaps each truth animal."""
    a = run.agent[aid]
    out: Counter[int] = Counter()
    for k in frames:
        box = a.boxes.get(k)
        if box is None:
            continue
        for tid, t in run.truth.items():
            if k in t.boxes and iou(box, t.boxes[k]) >= MATCH_IOU:
                out[tid] += 1
    return out


def _covers(run: Run, aid: int, tid: int, frames: range) -> bool:
    """Agent track ``aid`` holds truth animal ``tid`` in some frame: overlapping it, or
    with at least half of its box inside."""
    a, t = run.agent[aid], run.truth[tid]
    return any(k in a.boxes and k in t.boxes and (iou(a.boxes[k], t.boxes[k]) >= MATCH_IOU
                                                  or inside(t.boxes[k], a.boxes[k]) >= 0.5)
               for k in frames)


def count_causes(run: Run) -> Causes:
    """The causes of the clip's count error, summed over its windows."""
    out = Causes()
    every = range(run.frames)
    ever = {aid for aid in run.agent if _overlaps(run, aid, every)}
    for w, (counted, truth_ids) in enumerate(run.window_ids):
        frames = range(w * run.window_frames, (w + 1) * run.window_frames)
        out.truth += len(truth_ids)
        out.agent += len(counted)
        owners: Counter[int] = Counter()
        for aid in counted:
            overlap = _overlaps(run, aid, frames)
            if not overlap:
                out.stale += aid in ever
                out.false += aid not in ever
                continue
            tid = overlap.most_common(1)[0][0]
            if tid not in truth_ids:
                out.partial += 1
            else:
                owners[tid] += 1
        out.split += sum(n - 1 for n in owners.values())
        for tid in truth_ids - owners.keys():
            if any(_covers(run, aid, tid, frames) for aid in counted):
                out.merged += 1
            else:
                out.missed += 1
    for aid in run.agent:
        out.carried += sum(n >= CARRY_FRAMES for n in _overlaps(run, aid, every).values()) > 1
    return out


def off_windows(run: Run) -> list[str]:
    """One line per window whose count is off: the truth's animals and, for each track
    counted, the truth animal it overlapped most in the window (``-``: none)."""
    out = []
    for w, (counted, truth_ids) in enumerate(run.window_ids):
        if len(counted) == len(truth_ids):
            continue
        frames = range(w * run.window_frames, (w + 1) * run.window_frames)
        owners = []
        for aid in sorted(counted):
            overlap = _overlaps(run, aid, frames).most_common(1)
            owners.append(f"{aid}->{overlap[0][0] if overlap else '-'}")
        out.append(f"  window {w} (frames {frames.start}-{frames.stop - 1}): truth "
                   f"{sorted(truth_ids)}, counted {' '.join(owners) or 'none'}")
    return out


def causes_table(rows: dict[str, list[Run]]) -> None:
    """Per variant (its clips pooled): the count error by cause, in animals and as a
    share of the truth's count."""
    print("\n| count error by cause (animals over every window) | truth | agent | "
          + " | ".join(CAUSES) + " | tracks carried onto another animal |")
    print("|---|" + "---:|" * (len(CAUSES) + 3))
    for name, runs in rows.items():
        c = sum((count_causes(r) for r in runs), Causes())
        cells = " | ".join(f"{'+' if cause in CAUSES[:4] else '-'}{getattr(c, cause)} "
                           f"({getattr(c, cause) / max(c.truth, 1):.1%})" for cause in CAUSES)
        print(f"| {name} | {c.truth} | {c.agent} | {cells} | {c.carried} |")
