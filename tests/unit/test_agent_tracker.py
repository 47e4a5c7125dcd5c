"""Tracker: ids across frames, confirmation, coasting, the vote, resting probes, paths."""

from __future__ import annotations

import pytest

from edge_agent.regions.tracker import Observation, Tracker
from edge_agent.regions.votes import Votes

BG = frozenset({"other"})


def obs(x: float, label: str = "dog", conf: float = 0.9, y: float = 100.0, size: float = 40.0,
        votes: bool = True, probe_of: int | None = None) -> Observation:
    return Observation((x, y, x + size, y + size), label, conf, votes, probe_of)


def test_one_id_per_object_across_frames_and_two_objects_keep_theirs() -> None:
    t = Tracker(BG, confirm_hits=3, coast_seconds=1.0)
    ids = []
    for i in range(10):
        t.update([obs(10 + 8 * i), obs(300 - 8 * i, "cat", y=300)], now=i * 0.2)
        ids.append(sorted((tr.track_id, tr.label) for tr in t.tracks))
    assert all(frame == [(1, "dog"), (2, "cat")] for frame in ids)


def test_a_track_is_announced_once_when_confirmed_and_ends_after_coasting() -> None:
    t = Tracker(BG, confirm_hits=3, coast_seconds=1.0, reid_seconds=0.0)
    appeared = [len(t.update([obs(10 + 5 * i)], now=i * 0.2).appeared) for i in range(5)]
    assert appeared == [0, 0, 1, 0, 0]  # tentative tracks never count
    ended = [t.update([], now=1.0 + 0.2 * k).ended for k in range(7)]
    assert [len(e) for e in ended] == [0, 0, 0, 0, 0, 1, 0]  # 2.0 - 0.8 > 1.0 s of coast
    left = ended[5][0]
    assert left.announced and left.dwell_seconds == 0.8 and left.label == "dog"


def test_a_tentative_track_ends_at_its_first_miss() -> None:
    t = Tracker(BG, confirm_hits=3)
    t.update([obs(10)], 0.0)
    assert [tr.track_id for tr in t.update([], 0.2).ended] == [1]
    assert t.tracks == []


def test_the_label_is_the_confidence_weighted_vote() -> None:
    t = Tracker(BG, confirm_hits=1)
    for i, (label, conf) in enumerate([("dog", 0.9), ("cat", 0.95), ("dog", 0.8), ("cat", 0.6)]):
        t.update([obs(10 + 2 * i, label, conf)], i * 0.1)
    track = t.tracks[0]
    assert track.label == "dog"  # 1.7 against 1.55
    assert abs(track.confidence - 1.7 / 4) < 1e-9


def test_background_votes_keep_a_person_from_ever_becoming_an_animal() -> None:
    t = Tracker(BG, confirm_hits=2)
    appeared = []
    for i in range(8):  # mostly "other", a few confident dog crops in between
        label, conf = ("dog", 0.7) if i % 3 == 0 else ("other", 0.9)
        appeared += t.update([obs(10 + 3 * i, label, conf)], i * 0.1).appeared
    assert appeared == [] and t.tracks[0].label == "other"
    assert t.resting() == []  # not probed at its last box


def test_crops_that_abstain_keep_the_track_but_do_not_vote() -> None:
    t = Tracker(BG, confirm_hits=3)
    for i in range(5):
        t.update([obs(10 + 3 * i, "cat", 0.4, votes=False)], i * 0.1)
    track = t.tracks[0]
    assert track.confirmed and track.label is None and track.votes.solo_voters == 0
    assert not t.is_animal(track)


def test_small_fast_boxes_match_by_centre_distance() -> None:
    t = Tracker(BG, confirm_hits=1)
    for i in range(5):  # 10 px boxes jumping 12 px a frame: they never overlap
        t.update([obs(10 + 12 * i, size=10)], i * 0.1)
    assert [tr.track_id for tr in t.tracks] == [1]


def test_a_resting_animal_is_kept_by_probes_and_leaves_when_a_probe_sees_none() -> None:
    t = Tracker(BG, confirm_hits=2, coast_seconds=0.5, reid_seconds=0.0)
    t.update([obs(10)], 0.0)
    t.update([obs(12)], 0.1)
    (resting,) = t.resting()
    for k in range(2, 30):  # no motion; the probe at its last box still sees a dog
        t.update([obs(12, probe_of=resting.track_id)], k * 0.1)
    assert [tr.track_id for tr in t.tracks] == [resting.track_id]
    ended = []
    for k in range(30, 40):  # gone: the probe sees lawn ("other")
        ended += t.update([obs(12, "other", 0.95, probe_of=resting.track_id)], k * 0.1).ended
    assert [tr.track_id for tr in ended] == [resting.track_id]
    assert ended[0].label == "dog"  # a failed probe does not vote
    assert abs(ended[0].dwell_seconds - 2.9) < 1e-9


def test_the_path_is_sampled_to_the_limit_over_the_whole_life() -> None:
    t = Tracker(BG, confirm_hits=1, path_limit=8)
    for i in range(100):
        t.update([obs(float(i))], i * 0.1)
    path = t.tracks[0].sampled_path(8)
    assert len(path) <= 8
    assert path[0] == (20.0, 120.0) and path[-1] == (119.0, 120.0)
    xs = [p[0] for p in path]
    assert xs == sorted(xs) and xs[-2] > 60  # spread over the life, not its start


def test_an_animal_track_does_not_take_the_lawn_it_uncovers() -> None:
    """Leaving a resting place, the background model shows the dog and a ghost where it lay
    (lawn, "other"): the dog's track follows the dog, the ghost gets a track of its own."""
    t = Tracker(BG, confirm_hits=2)
    for i in range(3):
        t.update([obs(100)], i * 0.1)
    (dog,) = t.tracks
    for i in range(3, 8):
        ghost = obs(100, "other", 0.95)
        moving = obs(100 + 15 * (i - 2), "dog", 0.9)
        t.update([ghost, moving], i * 0.1)
    assert dog.box[0] == 175 and dog.label == "dog"
    assert {tr.label for tr in t.tracks if tr is not dog} == {"other"}


def test_two_animals_that_meet_keep_their_ids_when_they_part() -> None:
    """A small dog passes a big one: for 3 s (longer than the coast) the background model
    sees one region, which the big dog's track takes; the small dog's track is covered,
    moves on inside it, and takes its own region again when they part."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=1.0)
    frames = [[obs(20 + 10 * i, size=40), obs(300, size=120)] for i in range(12)]
    # Merged for 2.9 s (the last box 10 px wide: a box is never empty).
    frames += [[Observation((130 + 10 * i, 100, 420, 220), "dog", 0.9, True)]
               for i in range(29)]
    frames += [[obs(440 + 10 * i, size=40), obs(300, size=120)] for i in range(8)]
    ids = []
    for k, observations in enumerate(frames):
        t.update(observations, k * 0.1)
        ids.append(sorted(tr.track_id for tr in t.tracks))
    assert ids[-1] == [1, 2] and t._next_id == 3  # nobody counted twice


def test_velocity_finds_a_hidden_animal_where_it_went() -> None:
    """A dog runs behind a bush for a second: it comes out 150 px on, three box widths
    from where it was last seen, and keeps its id."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=2.0)
    for i in range(6):
        t.update([obs(10 + 15 * i, size=50)], i * 0.1)
    for i in range(6, 16):
        t.update([], i * 0.1)
    t.update([obs(10 + 15 * 16, size=50)], 1.6)
    assert [tr.track_id for tr in t.tracks] == [1]
    assert t.tracks[0].hits == 7


def test_an_animal_coming_in_where_a_person_left_gets_its_own_track() -> None:
    """A person walks out at the left edge and a cat walks in there a second later: the
    person's coasting track must not take the cat (a long person vote would outweigh
    the cat's for seconds, and the cat would not be counted)."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=2.0)
    for i in range(30):
        t.update([obs(100 - 3 * i, "other", 0.95, size=60)], i * 0.1)
    for i in range(30, 40):
        t.update([], i * 0.1)
    for i in range(40, 44):
        t.update([obs(5 + 3 * (i - 40), "cat", 0.9, size=60)], i * 0.1)
    cats = [tr for tr in t.tracks if t.is_animal(tr)]
    assert len(cats) == 1 and cats[0].confirmed and cats[0].label == "cat"


def _hide_and_return(t: Tracker, back: list[Observation]) -> list[int]:
    """A dog walks right for 1 s, is out of sight 4 s (twice the coast), then ``back``
    is seen for 1 s; the ids announced, in order."""
    announced = []
    frames = [[obs(100 + 10 * i, size=50)] for i in range(10)]
    frames += [[] for _ in range(40)] + [back] * 10
    for k, observations in enumerate(frames):
        announced += [tr.track_id for tr in t.update(observations, k * 0.1).appeared]
    return announced


def test_an_animal_lost_longer_than_the_coast_is_found_again_near_where_it_went() -> None:
    """It stopped behind a bush: its region comes back a box width from where it was
    last seen (not where its speed would have taken it in 4 s), larger (seen whole)."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=2.0)
    assert _hide_and_return(t, [obs(220, size=70)]) == [1]
    (dog,) = t.tracks
    assert dog.track_id == 1 and dog.hits == 20 and dog.box == (220, 100, 290, 170)
    assert dog.first_seen == 0.0 and dog.label == "dog"


def test_another_animal_far_away_or_of_another_label_is_a_new_track() -> None:
    far = Tracker(BG, confirm_hits=3, coast_seconds=2.0)
    assert _hide_and_return(far, [obs(900, size=50)]) == [1, 2]
    cat = Tracker(BG, confirm_hits=3, coast_seconds=2.0)
    assert _hide_and_return(cat, [obs(200, "cat", size=50)]) == [1, 2]


def test_a_lost_animal_not_found_again_leaves_after_the_coast_and_reid_time() -> None:
    t = Tracker(BG, confirm_hits=3, coast_seconds=1.0, reid_seconds=3.0)
    for i in range(5):
        t.update([obs(10 + 5 * i)], i * 0.1)
    ended = {k: t.update([], 0.5 + 0.1 * k).ended for k in range(45)}
    (when,) = [k for k, e in ended.items() if e]  # last seen 0.4 s: gone at 0.4 + 4 s
    assert 4.3 < 0.5 + 0.1 * when < 4.6
    assert ended[when][0].dwell_seconds == 0.4 and t.tracks == [] and t.lost == []



def test_a_coasting_animal_is_not_in_view() -> None:
    """A window counts the animals in view: a track that coasts into the next window (its
    animal has left) must not count there."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=2.0)
    for i in range(4):
        t.update([obs(10 + 5 * i), obs(300, "other")], i * 0.25)
    assert [tr.track_id for tr in t.in_view(0.75)] == [1]
    t.update([obs(300, "other")], 1.0)
    assert t.in_view(1.0) == [] and [tr.track_id for tr in t.resting()] == [1]


def test_a_cat_and_a_dog_that_pass_each_other_keep_their_tracks() -> None:
    """Side by side, they step past each other: each box now overlaps the other's track
    more than its own, yet each track follows the animal its crops say it is."""
    t = Tracker(BG, confirm_hits=3)
    for i in range(5):
        t.update([obs(100, "cat"), obs(130, "dog")], i * 0.1)
    for i in range(5, 8):
        t.update([obs(118, "cat"), obs(112, "dog")], i * 0.1)
        assert {tr.track_id: (tr.label, tr.box[0]) for tr in t.tracks} == {
            1: ("cat", 118), 2: ("dog", 112)}


def _pair_then_part(t: Tracker) -> tuple[int, int]:
    """A cat and a dog walk in side by side as one region for 9 s, which the model reads
    as "dog"; then the dog walks off to the right while the track goes on with the cat,
    whose crops mostly abstain (a few vote cat). The ids of the pair's and the dog's
    tracks."""
    for i in range(45):
        t.update([Observation((100 + i, 100, 220 + i, 160), "dog", 0.8, True)], i * 0.2)
    (pair,) = t.tracks
    for k in range(20):
        now = (45 + k) * 0.2
        cat = Observation((145, 100, 195, 160), "cat", 0.7, k % 4 == 0)
        dog = Observation((245 + 10 * k, 100, 295 + 10 * k, 160), "dog", 0.9, True)
        t.update([cat, dog], now)
    (dog_track,) = [tr for tr in t.tracks if tr is not pair]
    return pair.track_id, dog_track.track_id


def test_a_pair_that_parts_labels_the_track_left_by_its_solo_crops() -> None:
    """The crops of the pair are group crops once another animal is seen parting from its
    region: the track that goes on with the cat is a cat (its few solo votes), and the dog
    that parted starts clean; not two dogs and no cat."""
    t = Tracker(BG, confirm_hits=3)
    pair_id, dog_id = _pair_then_part(t)
    labels = {tr.track_id: tr.label for tr in t.tracks}
    assert labels == {pair_id: "cat", dog_id: "dog"}
    pair = next(tr for tr in t.tracks if tr.track_id == pair_id)
    # From the frame the dog was first seen apart (its track confirmed 2 frames later).
    assert pair.votes.group == pytest.approx({"dog": 45 * 0.8})
    assert pair.votes.solo == pytest.approx({"cat": 5 * 0.7})
    assert pair.confidence == pytest.approx(0.7)  # over its solo voters


def test_a_track_with_too_few_solo_votes_keeps_the_vote_of_all_its_crops() -> None:
    """Crops that abstain after the parting are no evidence: the track keeps its label."""
    t = Tracker(BG, confirm_hits=3)
    for i in range(20):
        t.update([Observation((100, 100, 220, 160), "dog", 0.8, True)], i * 0.2)
    for i in range(20, 23):
        cat = Observation((100, 100, 150, 160), "cat", 0.7, False)
        dog = Observation((200, 100, 250, 160), "dog", 0.9, True)
        t.update([cat, dog], i * 0.2)
    (pair,) = [tr for tr in t.tracks if tr.track_id == 1]
    assert pair.votes.group and not pair.votes.solo and pair.label == "dog"


def test_what_a_track_uncovers_or_a_person_beside_it_is_no_parting() -> None:
    """A crop that says "no animal" born at a dog's box (the lawn it lay on, a person
    walking off) is not an animal parting from it: the dog's votes stay its own."""
    t = Tracker(BG, confirm_hits=2)
    for i in range(10):
        t.update([obs(100)], i * 0.1)
    (dog,) = t.tracks
    for i in range(10, 14):
        t.update([obs(100, "other", 0.95), obs(125, "dog")], i * 0.1)
    assert dog.votes.group == {} and dog.votes.solo == pytest.approx({"dog": 14 * 0.9})


def test_crops_of_two_animals_in_one_region_are_group_crops_of_the_track_that_took_it(
) -> None:
    """A small dog walks into a big cat's region: the merged region reads "dog" for 3 s
    and the cat's track takes it (it overlaps the cat's box most). Those crops hold
    both animals, so the cat's own crops keep it a cat."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=1.0)
    frames = [[obs(20 + 10 * i, size=40), obs(300, "cat", size=120)] for i in range(12)]
    frames += [[Observation((130 + 10 * i, 100, 420, 220), "dog", 0.9, True)]
               for i in range(30)]
    frames += [[obs(440 + 10 * i, size=40), obs(300, "cat", size=120)] for i in range(8)]
    for k, observations in enumerate(frames):
        t.update(observations, k * 0.1)
    labels = {tr.track_id: tr.label for tr in t.tracks}
    assert labels == {1: "dog", 2: "cat"}
    cat = next(tr for tr in t.tracks if tr.track_id == 2)
    assert set(cat.votes.group) == {"dog"}


def test_solo_votes_decide_once_they_weigh_enough_and_the_group_is_kept_apart() -> None:
    votes = Votes()
    for i in range(10):
        votes.add("dog", 0.9, i * 0.1)
    votes.add("cat", 0.6, 1.0)  # the animal alone again: another parted from it
    votes.group_before(1.0)
    assert votes.label == "dog" and votes.solo == pytest.approx({"cat": 0.6})  # 0.6 < 1
    votes.add(None, 0.4, 1.1)  # abstains
    votes.add("cat", 0.8, 1.2)
    assert votes.label == "cat" and votes.confidence == pytest.approx(0.7)
    votes.last_to_group()
    assert votes.label == "dog" and votes.group == pytest.approx({"dog": 9.0, "cat": 0.8})


def test_a_parting_groups_only_the_last_seconds_of_a_long_track() -> None:
    """A dog tracked alone for 30 s is joined by a cat that came in unseen beside it (one
    region, read "cat" for 4 s); when the cat parts, the dog's crops of the last 10 s are
    group votes, not its 30 s alone: three misread crops after do not make it a cat."""
    t = Tracker(BG, confirm_hits=3)
    for i in range(150):
        t.update([obs(100, size=60)], i * 0.2)
    (dog,) = t.tracks
    for i in range(150, 170):
        t.update([Observation((100, 100, 220, 160), "cat", 0.9, True)], i * 0.2)
    for i in range(170, 175):
        cat = Observation((200, 100, 250, 150), "cat", 0.9, True)
        t.update([obs(100, "cat", 0.7, size=60), cat], i * 0.2)
    assert dog.votes.group and dog.label == "dog"


def test_a_resting_animals_specks_are_pieces_of_it_not_animals_of_their_own() -> None:
    """The background model absorbs a resting dog unevenly: specks of it still move, and
    the model reads them as animals. The dog's track neither shrinks onto one (its centre
    gate reaches them all) nor lets the others become animals."""
    t = Tracker(BG, confirm_hits=3)
    for i in range(5):
        t.update([obs(100 + i, size=200)], i * 0.1)
    dog = t.tracks[0].box
    specks = [(150.0, 150.0, 180.0, 180.0), (250.0, 240.0, 280.0, 270.0)]
    for k in range(5, 15):
        t.update([Observation(b, "cat", 0.9, True) for b in specks], k * 0.1)
    assert [tr.track_id for tr in t.tracks] == [1] and t.tracks[0].box == dog


def test_a_lost_animal_is_not_followed_along_its_last_speed_for_the_whole_reid_time() -> None:
    """A dog last seen moving right at 100 px/s leaves the picture; 9 s later another dog
    comes in 900 px on, just where the first one's speed would have taken it. Its speed
    of 9 s ago says nothing about where it is now (a box leaving through the frame's edge
    even reads as speed the wrong way): the newcomer is an animal of its own."""
    t = Tracker(BG, confirm_hits=3, coast_seconds=2.0, reid_seconds=8.0)
    announced = []
    frames = [[obs(100 + 10 * i, size=50)] for i in range(10)]
    frames += [[] for _ in range(90)] + [[obs(1090 + 10 * i, size=50)] for i in range(5)]
    for k, observations in enumerate(frames):
        announced += [tr.track_id for tr in t.update(observations, k * 0.1).appeared]
    assert announced == [1, 2]
