"""Splitting a moving region that holds several animals (``regions/split.py``), on masks
drawn as the motion mask would hold them."""

from __future__ import annotations

import cv2
import numpy as np

from edge_agent.regions.split import rejoin, split_blob

RADIUS = 4.4  # the default's smallest animal on the 160 px copy (3 % wide, dilated)
NECK = 0.6


def blob(*shapes: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """A 160x120 mask with filled ellipses (centre, half-axes)."""
    mask = np.zeros((120, 160), np.uint8)
    for centre, axes in shapes:
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return mask


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    x, y, w, h = cv2.boundingRect(mask)
    return x, y, x + w, y + h


def test_two_touching_animals_are_two_boxes_one_round_each() -> None:
    left, right = ((50, 60), (16, 12)), ((80, 62), (13, 10))
    mask = blob(left, right)
    assert cv2.connectedComponents(mask)[0] == 2, "one blob: background and the pair"
    parts = sorted(split_blob(mask, box_of(mask), RADIUS, NECK))
    assert len(parts) == 2, parts
    for part, shape in zip(parts, (left, right), strict=True):
        expect = box_of(blob(shape))
        assert max(abs(a - b) for a, b in zip(part, expect, strict=True)) <= 3, (part, expect)


def test_one_animal_is_one_box_head_legs_and_all() -> None:
    body, head = ((70, 60), (24, 12)), ((98, 50), (9, 8))
    legs = [((x, 74), (3, 7)) for x in (54, 62, 78, 86)]
    tail = ((44, 52), (8, 3))
    for shapes in ([body], [body, head], [body, head, *legs, tail]):
        mask = cv2.dilate(blob(*shapes), np.ones((3, 3), np.uint8), iterations=2)
        box = box_of(mask)
        assert split_blob(mask, box, RADIUS, NECK) == [box], shapes


def test_a_speck_beside_an_animal_is_not_an_animal_of_its_own() -> None:
    mask = blob(((60, 60), (18, 14)), ((82, 60), (4, 3)))
    box = box_of(mask)
    assert split_blob(mask, box, RADIUS, NECK) == [box]


def test_a_region_too_thin_for_two_animals_is_not_looked_into() -> None:
    mask = blob(((60, 60), (30, 3)))
    box = box_of(mask)
    assert split_blob(mask, box, RADIUS, NECK) == [box]


# Boxes in frame pixels: a dog's body and its head, split apart at the neck.
BODY, HEAD = (100.0, 100.0, 180.0, 150.0), (176.0, 90.0, 210.0, 124.0)
FRAME = (640, 480)


def test_parts_inside_one_tracked_animal_are_joined_back_into_it() -> None:
    dog = (98.0, 88.0, 212.0, 152.0)  # where the dog's track says it is now
    assert rejoin([BODY, HEAD], [dog], *FRAME) == [(100.0, 90.0, 210.0, 150.0)]


def test_parts_of_two_tracked_animals_stay_apart_even_in_one_merged_box() -> None:
    # The dog's track took the merged region the frame before (its box holds both
    # parts); the cat it met is covered, its box moved into that region.
    cat_part = (180.0, 100.0, 230.0, 140.0)
    merged, cat = (100.0, 95.0, 232.0, 152.0), (178.0, 98.0, 228.0, 142.0)
    assert sorted(rejoin([BODY, cat_part], [merged, cat], *FRAME)) == [BODY, cat_part]


def test_parts_no_tracked_animal_holds_are_animals_of_their_own() -> None:
    assert rejoin([BODY, HEAD], [], *FRAME) == [BODY, HEAD]
    # A cat walking in beside a tracked dog: the dog keeps its part, the cat has its own.
    dog = (96.0, 96.0, 184.0, 154.0)
    assert sorted(rejoin([BODY, HEAD], [dog], *FRAME)) == [BODY, HEAD]


def test_a_tracked_animal_still_coming_in_at_the_edge_takes_its_whole_region() -> None:
    # A dog walking up from the bottom edge, seen to its shoulders so far: the part of it
    # that just came into view is beyond its last box, and is not a second animal.
    coming = (300.0, 420.0, 380.0, 480.0)  # its predicted box, on the bottom edge
    body, rest = (300.0, 430.0, 380.0, 480.0), (330.0, 380.0, 400.0, 432.0)
    assert rejoin([body, rest], [coming], *FRAME) == [(300.0, 380.0, 400.0, 480.0)]
    # The same parts in the middle of the frame: the new part is an animal of its own.
    assert len(rejoin([body, rest], [(300.0, 420.0, 380.0, 470.0)], 640, 640)) == 2
