"""Tracks: one id per object across frames; an animal's label is the vote of its crops.

Every analysed frame the analyzer hands over its classified crops as observations.
Each crop either votes (a background label at any confidence, or an animal label at or
above the animal confidence) or abstains (an animal label below it). A track's label is
the confidence-weighted vote of its crops, so a track that is mostly "person" or "other"
never becomes an animal, and one wrong crop does not flip a dog into a cat.

Matching is greedy: pairs by IoU (at least ``iou_min``) best first, then, for small or
fast boxes that no longer overlap, by centre distance within ``centre_gate`` times the
track's longer side; an animal's track never takes a crop that votes "no animal", and
in both stages the pairs whose labels agree go first. Both
compare the crop with where the track should be now: its last box moved on at its
velocity (a smoothed centre speed), so an animal that was out of sight for a while is
found again where it went, not where it was. A crop left over that lies mostly inside a
track seen in this frame, or inside a confirmed animal's, is a part of it (the
background model absorbs a resting animal unevenly), not a new object.

Nor does a confirmed animal's track take a region under ``_PART`` of its box's area: that
is a piece of it (a speck of a resting animal that the background model has not absorbed
yet, which the centre gate of a large box reaches) or one animal of the group its box
held. Taking it shrank the track onto the piece, and the rest of the animal's specks
became tracks of their own, each read as an animal: one resting animal counted as four.
The track is probed at its own box instead.

Two animals that meet become one moving region, which one of their tracks takes. The
other is *covered*: while its predicted box lies mostly inside a crop that an animal
took in this frame, it keeps its id and moves on at its velocity (no vote), for up to
``cover_seconds``; when the animals part, it takes its own region again. Without
this, every meeting of two animals longer than the coast ended one track and started
another: one animal counted twice.

Two animals that walk in together are one region, and the model reads the pair as one of
them (a cat beside a dog as "dog"): the track that went on with the cat when they parted
kept the pair's votes and was counted a dog. So a track's crops that held another animal
are *group* votes (``votes.Votes``): those cast before another animal's track was born
inside its box (an animal parting from its region: counted when that track is confirmed,
which starts clean), and the regions it took while a track that had just walked into them
was covered.

A new track is tentative; it is confirmed after ``confirm_hits`` frames with a match and
ends at its first miss until then. A confirmed track coasts
(keeps its id without a match) for ``coast_seconds``, then ends.

An animal is often lost for longer than that, or found again by a region that neither
overlaps nor lies near the box it was last seen in (it hid behind a bush, stopped and
faded into the background model, or its region shrank to a part and grew back): without
more, one animal became two tracks and was counted twice. So a confirmed animal's track
that stops being seen is *lost*, not ended, for another ``reid_seconds``; and a new track,
when it is confirmed, is the lost (or coasting) animal it starts near instead: within
``centre_gate`` box sizes of the line from where that animal was last seen to where it
would be now (its velocity followed for at most ``coast_seconds``), with no vote against
its label. It takes the old id, votes and path, so it
is counted and announced once; a lost track not found again ends when its time is up
(with the dwell it had when last seen). A resting animal's
track is kept alive by probes: the analyzer classifies a crop at its last box, and a
probe that still sees an animal counts as a match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .boxes import Box, area, centre, centre_distance, inside, iou
from .votes import Votes

Point = tuple[float, float]
_SMOOTH = 0.5  # weight of the newest displacement in the velocity
_COVERED = 0.5  # share of a predicted box inside another animal's region to be covered
_PART = 0.25  # a region under this share of a confirmed animal's box area is a piece of it
_PARTED = 0.3  # share of a new animal's first box inside a track's box for it to part from it
# A track covered this soon after it was last seen on its own walked into the region that
# covers it; one covered later (coasting, probed, stale) may never have been in it.
_MET_GAP = 0.5


@dataclass(frozen=True)
class Observation:
    """One classified crop: where, what, and whether its label is trusted to vote."""

    box: Box
    label: str
    confidence: float
    votes: bool
    probe_of: int | None = None  # the track at whose last box the crop was cut


@dataclass
class Track:
    track_id: int
    box: Box
    first_seen: float
    last_seen: float
    hits: int = 0
    confirmed: bool = False
    announced: bool = False  # the animal_appeared event went out
    votes: Votes = field(default_factory=Votes)
    path: list[Point] = field(default_factory=list)
    velocity: Point = (0.0, 0.0)  # of the box's centre, pixels per second
    covered_since: float | None = None  # inside another animal's region since then
    merged: bool = False  # covered right after it was seen on its own: walked in
    parted_from: set[int] = field(default_factory=set)  # born inside them (tentative only)
    _stride: int = 1

    @property
    def label(self) -> str | None:
        """The vote of the track's crops (None before any vote): of those in which it
        was alone when they weigh ``SOLO_MIN``, else of all of them."""
        return self.votes.label

    @property
    def confidence(self) -> float:
        return self.votes.confidence

    @property
    def dwell_seconds(self) -> float:
        return self.last_seen - self.first_seen

    def sampled_path(self, limit: int) -> list[Point]:
        """At most ``limit`` centres spread over the track's life, its last one included."""
        return [*self.path[:limit - 1], centre(self.box)]

    def predicted(self, now: float) -> Box:
        """The last box moved on at the track's velocity to ``now``."""
        dt = now - self.last_seen
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        b = self.box
        return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)

    def _move(self, box: Box, now: float) -> None:
        """Take a new box; the velocity follows the centre, except across a change of
        size (a region that merged with another or lost a part moves its centre without
        the animal moving)."""
        dt = now - self.last_seen
        if self.hits and dt > 0 and 0.5 <= area(box) / max(area(self.box), 1.0) <= 2.0:
            (x0, y0), (x1, y1) = centre(self.box), centre(box)
            vx, vy = (x1 - x0) / dt, (y1 - y0) / dt
            self.velocity = (_SMOOTH * vx + (1 - _SMOOTH) * self.velocity[0],
                             _SMOOTH * vy + (1 - _SMOOTH) * self.velocity[1])
        self.box, self.last_seen = box, now

    def _hit(self, obs: Observation, now: float, path_limit: int) -> None:
        self._move(obs.box, now)
        self.covered_since, self.merged = None, False
        self.hits += 1
        self.votes.add(obs.label if obs.votes else None, obs.confidence, now)
        if (self.hits - 1) % self._stride == 0:
            self.path.append(centre(obs.box))
            if len(self.path) >= path_limit:  # keep every other point, sample half as often
                del self.path[1::2]
                self._stride *= 2


@dataclass(frozen=True)
class Changes:
    appeared: list[Track]  # confirmed as an animal in this frame
    ended: list[Track]  # every track that ended in this frame (announced or not)


class Tracker:
    def __init__(self, background: frozenset[str], confirm_hits: int = 3,
                 coast_seconds: float = 2.0, iou_min: float = 0.2, centre_gate: float = 1.5,
                 path_limit: int = 32, cover_seconds: float = 10.0,
                 reid_seconds: float = 8.0) -> None:
        self.background = background
        self.confirm_hits = confirm_hits
        self.coast_seconds = coast_seconds
        self.iou_min = iou_min
        self.centre_gate = centre_gate
        self.path_limit = path_limit
        self.cover_seconds = cover_seconds
        self.reid_seconds = reid_seconds
        self.tracks: list[Track] = []
        self.lost: list[Track] = []  # confirmed animals out of sight, not yet ended
        self._next_id = 1

    def is_animal(self, track: Track) -> bool:
        label = track.label
        return label is not None and label not in self.background

    def in_view(self, now: float) -> list[Track]:
        """Confirmed animals seen in the frame at ``now`` (matched, probed or covered): a
        coasting track is not, so one that ends after a window starts is not counted in it."""
        return [t for t in self.tracks
                if t.confirmed and t.last_seen == now and self.is_animal(t)]

    def resting(self) -> list[Track]:
        """Tracks that voted animal: a crop at their last box asks whether they are still there."""
        return [t for t in self.tracks if self.is_animal(t)]

    def update(self, observations: Sequence[Observation], now: float) -> Changes:
        """Match one frame's crops to the tracks; start, confirm and end tracks."""
        by_id = {t.track_id: t for t in self.tracks}
        before = {t.track_id: t.box for t in self.tracks}
        seen: set[int] = set()
        moving: list[Observation] = []
        for obs in observations:
            probed = by_id.get(obs.probe_of) if obs.probe_of is not None else None
            if probed is None:
                moving.append(obs)
            elif obs.votes and obs.label not in self.background and probed.track_id not in seen:
                probed._hit(obs, now, self.path_limit)  # still there
                seen.add(probed.track_id)
        free = [t for t in self.tracks if t.track_id not in seen]
        taken: set[int] = set()
        met: list[Track] = []  # animal tracks that took a moving region
        for ti, oi in self._match(free, moving, now):
            free[ti]._hit(moving[oi], now, self.path_limit)
            seen.add(free[ti].track_id)
            taken.add(oi)
            if self.is_animal(free[ti]):
                met.append(free[ti])
        matched = [t for t in self.tracks if t.track_id in seen]
        holders = [t for t in self.tracks if t.track_id in seen
                   or (t.confirmed and self.is_animal(t))]
        for oi, obs in enumerate(moving):
            if oi not in taken and not any(inside(obs.box, t.box) > 0.6 for t in holders):
                track = Track(self._next_id, obs.box, now, now)
                self._next_id += 1
                if obs.label not in self.background:  # an animal coming out of a region?
                    track.parted_from = {t.track_id for t in matched
                                         if inside(obs.box, before[t.track_id]) >= _PARTED}
                track._hit(obs, now, self.path_limit)
                self.tracks.append(track)
                seen.add(track.track_id)
        if met:
            self._cover(met, seen, now)
        return self._advance(seen, now)

    def _cover(self, met: list[Track], seen: set[int], now: float) -> None:
        """Confirmed animals not seen in this frame whose last or predicted box lies in a
        region an animal's track took: they met, and go on together for a while, inside
        that region and at the speed of the track that took it."""
        for t in self.tracks:
            if t.track_id in seen or not t.confirmed or not self.is_animal(t):
                continue
            since = t.covered_since if t.covered_since is not None else now
            if now - since > self.cover_seconds:
                continue
            box = t.predicted(now)
            host = max(met, key=lambda m: max(inside(box, m.box), inside(t.box, m.box)))
            if max(inside(box, host.box), inside(t.box, host.box)) >= _COVERED:
                if t.covered_since is None:
                    t.merged = now - t.last_seen <= _MET_GAP
                t.box, t.last_seen, t.covered_since = _within(box, host.box), now, since
                t.velocity = host.velocity
                seen.add(t.track_id)
                if t.merged:
                    host.votes.last_to_group()

    def end_all(self) -> Changes:
        """End every track now (the camera stops): announced ones leave with their dwell
        so far."""
        ended, self.tracks, self.lost = self.tracks + self.lost, [], []
        return Changes([], ended)

    def _fits(self, track: Track, obs: Observation) -> bool:
        """An animal's track never takes a crop that says "no animal": that is the lawn it
        uncovered (the background model's ghost where it rested) or a person beside it.
        Nor does a "no animal" track take a crop that votes animal: that is an animal
        coming in where a person left (a long person vote would outweigh it for seconds),
        which gets a track of its own. A confirmed animal's track does not take a piece
        of it (under ``_PART`` of its box's area)."""
        if track.confirmed and area(obs.box) < _PART * area(track.box) and self.is_animal(track):
            return False
        if not obs.votes or track.label is None:
            return True
        return (obs.label in self.background) == (track.label in self.background)

    def _disagree(self, track: Track, obs: Observation) -> bool:
        """The crop votes another label than the track's."""
        return obs.votes and track.label is not None and obs.label != track.label

    def _match(self, tracks: list[Track], obs: list[Observation], now: float
               ) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        boxes = [t.predicted(now) for t in tracks]
        # Pairs whose labels agree go first: where a cat and a dog cross, each track
        # keeps its own animal rather than the one whose box now overlaps it more.
        _take([(o, ti, oi) for _, o, ti, oi in sorted(
            (self._disagree(tracks[ti], o), -iou(b, o.box), ti, oi)
            for ti, b in enumerate(boxes) for oi, o in enumerate(obs)
            if iou(b, o.box) >= self.iou_min and self._fits(tracks[ti], o))], out)
        taken_t, taken_o = {ti for ti, _ in out}, {oi for _, oi in out}
        near: list[tuple[bool, float, int, int]] = []
        for ti, t in enumerate(tracks):
            if ti in taken_t:
                continue
            b = boxes[ti]
            gate = self.centre_gate * max(b[2] - b[0], b[3] - b[1])
            near += [(self._disagree(t, o), d, ti, oi) for oi, o in enumerate(obs)
                     if oi not in taken_o and (d := centre_distance(b, o.box)) <= gate
                     and self._fits(t, o)]
        _take([(d, ti, oi) for _, d, ti, oi in sorted(near)], out)
        return out

    def _advance(self, seen: set[int], now: float) -> Changes:
        appeared: list[Track] = []
        ended: list[Track] = []
        alive: list[Track] = []
        for t in self.tracks:
            if t.track_id not in seen and (not t.confirmed
                                           or now - t.last_seen > self.coast_seconds):
                if t.confirmed and self.is_animal(t) and self.reid_seconds > 0:
                    self.lost.append(t)
                else:
                    ended.append(t)
                continue
            alive.append(t)
        self.tracks = alive
        for t in alive:
            if t.hits >= self.confirm_hits and not t.confirmed:
                t.confirmed = True
                old = self._found_again(t, seen, now)
                if old is not None:  # the old id goes on where the new track was
                    self.tracks = [old if x is t else x for x in self.tracks if x is not old]
                    t = old
                else:
                    self._parted(t)
            if t.confirmed and not t.announced and self.is_animal(t):
                t.announced = True
                appeared.append(t)
        out = now - self.coast_seconds - self.reid_seconds
        ended += [t for t in self.lost if t.last_seen < out]
        self.lost = [t for t in self.lost if t.last_seen >= out]
        return Changes(appeared, ended)

    def _parted(self, new: Track) -> None:
        """``new``, just confirmed, was born inside the box of tracks that went on with
        another region: an animal that walked in with them as one region parted, so
        their crops so far were of both (one label for a pair), and the child starts
        clean. Their crops since it was born are their own (it was apart)."""
        if new.label is None or new.label not in self.background:
            for t in self.tracks:
                if t.track_id in new.parted_from:
                    t.votes.group_before(new.first_seen)
        new.parted_from = set()

    def _found_again(self, new: Track, seen: set[int], now: float) -> Track | None:
        """The lost or coasting animal that ``new`` (just confirmed) is, which then takes
        over ``new``'s state; None when it is another animal."""
        if new.label is not None and new.label in self.background:
            return None
        start = new.path[0] if new.path else centre(new.box)
        best: tuple[float, Track] | None = None
        for old in self.lost + [t for t in self.tracks if t.track_id not in seen]:
            if old is new or not old.confirmed or not self.is_animal(old):
                continue
            if new.label is not None and new.label != old.label:
                continue
            size = max(old.box[2] - old.box[0], old.box[3] - old.box[1])
            # Where it would be: no further than a coast's worth of its last velocity. A
            # box that leaves through the frame's edge shrinks and shifts inwards, which
            # reads as speed the wrong way; followed for the whole re-identification
            # time it crossed the picture and met the next animal coming in there.
            until = min(new.first_seen, old.last_seen + self.coast_seconds)
            d = _segment_distance(start, centre(old.box), centre(old.predicted(until)))
            if d <= self.centre_gate * size and (best is None or d < best[0]):
                best = (d, old)
        if best is None:
            return None
        old = best[1]
        self.lost = [t for t in self.lost if t is not old]
        old.box, old.last_seen, old.velocity = new.box, new.last_seen, new.velocity
        old.covered_since = None
        old.hits += new.hits
        old.votes.absorb(new.votes)
        for point in new.path:
            if len(old.path) >= self.path_limit:
                del old.path[1::2]
                old._stride *= 2
            old.path.append(point)
        return old


def _within(b: Box, region: Box) -> Box:
    """``b`` shifted (not resized) to lie inside ``region`` as far as it fits."""
    dx = max(region[0] - b[0], 0.0) + min(region[2] - b[2], 0.0)
    dy = max(region[1] - b[1], 0.0) + min(region[3] - b[3], 0.0)
    return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


def _segment_distance(p: Point, a: Point, b: Point) -> float:
    """Distance from ``p`` to the segment from ``a`` to ``b``."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else min(max(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length,
                                        0.0), 1.0)
    return float(((p[0] - a[0] - t * dx) ** 2 + (p[1] - a[1] - t * dy) ** 2) ** 0.5)


def _take(pairs: list[tuple[float, int, int]], out: list[tuple[int, int]]) -> None:
    """Greedy assignment: best pair first, each track and observation at most once."""
    taken_t, taken_o = {ti for ti, _ in out}, {oi for _, oi in out}
    for _, ti, oi in pairs:
        if ti not in taken_t and oi not in taken_o:
            taken_t.add(ti)
            taken_o.add(oi)
            out.append((ti, oi))
