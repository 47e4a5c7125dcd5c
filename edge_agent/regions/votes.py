"""A track's votes, kept apart by whether its crop held the animal alone.

Two animals that walk in together are one region, and the model reads the pair as one of
them (a cat beside a dog as "dog"). The crops that held another animal are *group*
votes; the label is the vote of the solo crops once they weigh ``SOLO_MIN``, else of all
of them, so the track that goes on with the cat when the pair parts is a cat.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

# Solo votes (confidence summed) that outvote a track's group crops: a few confident crops
# of the animal alone say more than many of it with another, yet one crop is no evidence.
SOLO_MIN = 1.0
# A pair walks together for seconds, not minutes: when another animal parts from a track's
# region, its crops of longer ago than this were most likely of it alone (an animal
# tracked alone for a while, then joined by one that came in unseen, beside it).
GROUP_SECONDS = 10.0
Tally = tuple[dict[str, float], int]  # confidence summed per label, crops that voted


@dataclass
class Votes:
    solo: dict[str, float] = field(default_factory=dict)
    solo_voters: int = 0
    group: dict[str, float] = field(default_factory=dict)
    group_voters: int = 0
    last: tuple[str, float] | None = None  # the solo vote of the crop of this frame
    # The solo votes of the last GROUP_SECONDS: when, label, confidence.
    recent: deque[tuple[float, str, float]] = field(default_factory=deque)

    def add(self, label: str | None, confidence: float, now: float) -> None:
        """A crop taken in this frame; ``label`` None: it abstains."""
        self.last = None
        while self.recent and self.recent[0][0] < now - GROUP_SECONDS:
            self.recent.popleft()
        if label is not None:
            self.solo[label] = self.solo.get(label, 0.0) + confidence
            self.solo_voters += 1
            self.last = (label, confidence)
            self.recent.append((now, label, confidence))

    def group_before(self, when: float) -> None:
        """Another animal parted from the track's region at ``when``: its solo crops of
        the ``GROUP_SECONDS`` before held that animal too."""
        while self.recent and self.recent[0][0] < when:
            _, label, weight = self.recent.popleft()
            self._regroup(label, weight)
            self.solo_voters -= 1
            self.group_voters += 1

    def last_to_group(self) -> None:
        """This frame's crop held another animal too (one that walked into the region)."""
        if self.last is not None:
            self._regroup(*self.last)
            self.solo_voters -= 1
            self.group_voters += 1
            self.last = None
            self.recent.pop()

    def absorb(self, other: Votes) -> None:
        """Take the votes of another track of the same animal (its recent ones are
        its own: the two are never a pair)."""
        for mine, theirs in ((self.solo, other.solo), (self.group, other.group)):
            for label, weight in theirs.items():
                mine[label] = mine.get(label, 0.0) + weight
        self.solo_voters += other.solo_voters
        self.group_voters += other.group_voters

    def ballot(self) -> Tally:
        """The votes that decide: the solo crops' once they weigh ``SOLO_MIN``, else all."""
        if not self.group or sum(self.solo.values()) >= SOLO_MIN:
            return self.solo, self.solo_voters
        every = dict(self.group)
        for label, weight in self.solo.items():
            every[label] = every.get(label, 0.0) + weight
        return every, self.solo_voters + self.group_voters

    @property
    def label(self) -> str | None:
        votes, _ = self.ballot()
        return max(votes, key=votes.__getitem__) if votes else None

    @property
    def confidence(self) -> float:
        """The voted label's mean confidence over the crops that voted (others count 0)."""
        votes, voters = self.ballot()
        if not votes:
            return 0.0
        return min(1.0, max(votes.values()) / voters)

    def _regroup(self, label: str, weight: float) -> None:
        if weight <= 0:
            return
        self.solo[label] -= weight
        if self.solo[label] <= 1e-9:
            del self.solo[label]
        self.group[label] = self.group.get(label, 0.0) + weight
