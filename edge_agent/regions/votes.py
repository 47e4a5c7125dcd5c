"""A track's votes, kept apart by whether its crop held the animal alone.

Two animals that walk in together are one region, and the model reads the pair as one of
them (a cat beside a dog as "dog"). The crops that held another animal are *group*
votes; the label is the vote of the solo crops once they weigh ``SOLO_MIN``, else of all
of them, so the track that goes on with the cat when the pair parts is a cat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Solo votes (confidence summed) that outvote a track's group crops: a few confident crops
# of the animal alone say more than many of it with another, yet one crop is no evidence.
SOLO_MIN = 1.0
Tally = tuple[dict[str, float], int]  # confidence summed per label, crops that voted


@dataclass
class Votes:
    solo: dict[str, float] = field(default_factory=dict)
    solo_voters: int = 0
    group: dict[str, float] = field(default_factory=dict)
    group_voters: int = 0
    last: tuple[str, float] | None = None  # the solo vote of the crop of this frame

    def add(self, label: str | None, confidence: float) -> None:
        """A crop taken in this frame; ``label`` None: it abstains."""
        self.last = None
        if label is not None:
            self.solo[label] = self.solo.get(label, 0.0) + confidence
            self.solo_voters += 1
            self.last = (label, confidence)

    def before(self) -> Tally:
        """The solo votes cast before this frame's crop."""
        solo = dict(self.solo)
        if self.last is None:
            return solo, self.solo_voters
        solo[self.last[0]] -= self.last[1]
        return solo, self.solo_voters - 1

    def to_group(self, tally: Tally) -> None:
        """The solo crops of ``tally`` (cast before another animal parted from the
        track's region) held that animal too."""
        votes, voters = tally
        for label, weight in votes.items():
            self._regroup(label, min(weight, self.solo.get(label, 0.0)))
        moved = min(voters, self.solo_voters)
        self.solo_voters -= moved
        self.group_voters += moved

    def last_to_group(self) -> None:
        """This frame's crop held another animal too (one that walked into the region)."""
        if self.last is not None:
            self._regroup(*self.last)
            self.solo_voters -= 1
            self.group_voters += 1
            self.last = None

    def absorb(self, other: Votes) -> None:
        """Take the votes of another track of the same animal."""
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
