"""Crops shaped like the agent's: what a regions-mode model learns and is judged on.

The agent cuts a region's box into a square on its longer side grown by the release's
``CropSpec.context``, padded with ``pad_value`` where it leaves the frame, resized
bilinearly to the input size (``edge_agent/regions/crops.py``). ``cut_crop`` does the
same here (a test holds the two to the same pixels), and ``jitter_box`` loosens or
tightens a box and moves it a little, as a background model's box around an animal is
never exact.

A training crop of a photo (``animal_crop``) pastes the animal's cut-out (its GrabCut
matte, ``trainer.synth.cutout``, as the clips film it), shrunk to an animal's width on a
640 px park camera (5 % to 45 % of the frame, log-uniform), onto an empty park backdrop,
cuts it around a jittered box of its opaque pixels and puts the canvas through the
clips' own camera (day, dusk, night, IR, rain) and, at times, motion blur or heavy JPEG.
Some get a second animal (another training photo's cut-out, either label) walking beside
the first, in front of or behind it, as the clips' groups do: the crop is still the first
one's and keeps its label.
Without a matte the photo is pasted as a rectangle with its own background: a model
trained so read 74 % of the clips' animal crops right (docs/performance.md), as it
learnt the sofa around the cat along with the cat.
A crop of the "other" class (``other_crop``) is mined from park clips without animals:
a distractor's box (a walker, a ball, leaves, a cloud shadow), a part of one (a walker's
head or legs: what a night's regions cut of a walker), or any box of the lawn,
the trees or the burnt-in clock, under the clip's own conditions. A dataset may also hold
an ``other/`` folder: crops a real camera's agent mined from its own background and an
operator confirmed (``control_plane/services/samples.py``). They are crops already, cut
as the agent cuts them, so ``mined_crop`` only moves, flips and degrades them a little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from protocols import CropSpec
from protocols.destreak import destreaked, opened, streaked

from .synth.conditions import CameraLook, spans_for
from .synth.scenes import Scene
from .synth.shifts import apply_shift
from .synth.spec import SceneSpec
from .synth.sprites import OPAQUE, paste
from .synth.timeline import Schedule

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
OTHER = "other"
FRAME = (640, 480)  # the park camera a crop stands for
# The crops a regions model is trained on and its release's agents cut, by default; the
# trainer's ``region_destreak`` sets their ``destreak``. ``destreak=3`` (rain's streaks
# opened away: the frozen backbone cannot read through them) lifts rain's crops from
# 56.7 % to 84.6 % but, with the weights and calibration of a model trained without it,
# over-counted rain's animals (docs/performance.md, "Rain: the streaks, not the crops'
# recipe").
REGION_CROPS = CropSpec()
WIDTH_RANGE = (0.05, 0.45)  # an animal's width, as a share of the frame's
SCENE_CONDITIONS = ("day", "dusk", "night", "ir", "rain")
BACKDROPS = 6  # empty parks per seed to put photos on
# The clips' animals come in groups (``Schedule.max_group``) and a follower walks within a
# quarter of its width of its leader, so the agent's crop of one animal often holds part
# of another: on the demo's park clips 95 of 152 cat crops did (docs/performance.md).
NEIGHBOUR_SHARE = 0.5  # of the animal crops, with a second animal beside the first
# Its width over the first's, log-uniform: a follower nearer the camera looks bigger.
NEIGHBOUR_WIDTH = (math.log(0.5), math.log(2.2))
NEIGHBOUR_GAP = (0.1, 1.0)  # centre distance over the half-widths' sum: overlap to touching
MOST_HIDDEN = 0.5  # a neighbour in front hides at most this share of the first: else behind


def square_around(box: Box, context: float) -> Box:
    """The square on ``box``'s longer side grown by ``context`` of it on every edge."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = max(box[2] - box[0], box[3] - box[1]) * (0.5 + context)
    return cx - half, cy - half, cx + half, cy + half


def cut_crop(bgr: U8, box: Box, spec: CropSpec, size: tuple[int, int]) -> U8:
    """The agent's crop of ``box`` in ``bgr``, at ``size`` (width, height), BGR; with
    ``spec.destreak``, a streaked square first opened across (rain: a frozen backbone
    reads a streaked crop some 30 points worse, docs/performance.md)."""
    height, width = bgr.shape[:2]
    x0, y0, x1, y1 = (round(v) for v in square_around(box, spec.context))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        square = bgr[y0:y1, x0:x1]
        if spec.destreak and streaked(square, spec.destreak):
            square = opened(square, spec.destreak)
        return np.asarray(cv2.resize(square, size, interpolation=cv2.INTER_LINEAR), np.uint8)
    if spec.destreak:
        bgr = destreaked(bgr, max(x0, 0), max(y0, 0), min(x1, width), min(y1, height),
                         spec.destreak)
    sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
    m = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])
    return np.asarray(cv2.warpAffine(bgr, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=(spec.pad_value,) * 3), np.uint8)


def jitter_box(box: Box, rng: np.random.Generator, scale: float = 0.2,
               shift: float = 0.1) -> Box:
    """``box`` grown or shrunk by up to ``scale`` per side and moved by up to ``shift`` of
    its size: a motion region is a little loose, tight or off-centre."""
    w, h = box[2] - box[0], box[3] - box[1]
    sw, sh = rng.uniform(1 - scale, 1 + scale, 2)
    dx, dy = rng.uniform(-shift, shift, 2)
    cx, cy = (box[0] + box[2]) / 2 + dx * w, (box[1] + box[3]) / 2 + dy * h
    return cx - w * sw / 2, cy - h * sh / 2, cx + w * sw / 2, cy + h * sh / 2


def condition(img: U8, name: str, rng: np.random.Generator) -> U8:
    """``img`` under a camera condition at a random severity (``clean``: unchanged)."""
    if name == "clean":
        return img
    return np.asarray(apply_shift(img, name, float(rng.uniform(0.4, 0.9)), rng), np.uint8)


def pick_optics(rng: np.random.Generator) -> str:
    """Optics the clips' camera does not have, at times: motion blur, heavy JPEG."""
    return str(rng.choice(("clean", "blur", "jpeg"), p=(0.7, 0.15, 0.15)))


LOOK_FRAMES = 500  # frames of the camera look's timeline, split over SCENE_CONDITIONS


@lru_cache(maxsize=4)
def camera_look(seed: int) -> CameraLook:
    """The park clips' camera (``trainer.synth.conditions``) through every scene condition
    at a severity of 0.8, as clips are filmed by default."""
    spans = spans_for(SCENE_CONDITIONS, 0.8, LOOK_FRAMES)
    return CameraLook(spans, FRAME[0], FRAME[1], 10.0, seed)


@lru_cache(maxsize=4)
def backdrops(seed: int) -> tuple[U8, ...]:
    """Empty day-lit parks (no animal, no distractor) to put photos on."""
    schedule = Schedule(empty_share=1.0, animals_per_minute=0, distractors_per_minute=0)
    out = []
    for i in range(BACKDROPS):
        spec = SceneSpec(width=FRAME[0], height=FRAME[1], seconds=0.1, seed=seed * 1000 + i,
                         schedule=schedule, noise=False, shake=False, timestamp=False)
        out.append(Scene(spec).render(0).image)
    return tuple(out)


@dataclass(frozen=True)
class Placed:
    """An animal's picture and matte at its size, and where its top-left goes."""

    bgr: U8
    matte: F32
    x: int
    y: int

    def paste(self, canvas: U8) -> None:
        paste(canvas, self.bgr, self.matte, self.x, self.y)

    def box(self, frame: tuple[int, int]) -> Box:
        """The box of its opaque pixels in a frame of ``frame`` (width, height)."""
        fw, fh = frame
        h, w = self.matte.shape
        x, y = self.x, self.y
        ys, xs = np.nonzero(self.matte[max(0, -y):fh - y, max(0, -x):fw - x] >= OPAQUE)
        if len(xs) == 0:  # too thin to stay opaque once shrunk: the box where it went
            return max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
        x, y = max(x, 0), max(y, 0)
        return x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1


def hidden_share(front: Placed, back: Placed) -> float:
    """The share of ``back``'s opaque pixels that ``front``'s opaque pixels cover."""
    bh, bw = back.matte.shape
    fh, fw = front.matte.shape
    x0, y0 = max(front.x, back.x), max(front.y, back.y)
    x1, y1 = min(front.x + fw, back.x + bw), min(front.y + fh, back.y + bh)
    solid = int(np.count_nonzero(back.matte >= OPAQUE))
    if x0 >= x1 or y0 >= y1 or solid == 0:
        return 0.0
    under = back.matte[y0 - back.y:y1 - back.y, x0 - back.x:x1 - back.x] >= OPAQUE
    over = front.matte[y0 - front.y:y1 - front.y, x0 - front.x:x1 - front.x] >= OPAQUE
    return float(np.count_nonzero(under & over)) / solid


def fit_animal(photo: U8, alpha: F32 | None, width: float, max_height: int,
               rng: np.random.Generator) -> tuple[U8, F32]:
    """``photo`` cut to its matte's opaque part and shrunk so that part is about ``width``
    pixels wide (at most ``max_height`` tall), maybe mirrored: picture and matte."""
    if alpha is None:
        alpha = np.ones(photo.shape[:2], np.float32)
    ys, xs = np.nonzero(alpha >= OPAQUE)
    if len(xs) == 0:
        raise ValueError("an animal's matte needs opaque pixels")
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    photo, alpha = photo[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    f = min(width / (x1 - x0), max_height / (y1 - y0))
    w, h = max(2, round((x1 - x0) * f)), max(2, round((y1 - y0) * f))
    small = np.asarray(cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
    matte = np.asarray(cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA), np.float32)
    if rng.random() < 0.5:
        small, matte = small[:, ::-1], matte[:, ::-1]
    return np.ascontiguousarray(small), np.ascontiguousarray(matte)


def spot_animal(photo: U8, alpha: F32 | None, width: float, rng: np.random.Generator
                ) -> Placed:
    """``photo`` (through ``alpha``) with its opaque part about ``width`` pixels wide, maybe
    mirrored, somewhere it fits whole in the frame."""
    fw, fh = FRAME
    small, matte = fit_animal(photo, alpha, width, fh - 2, rng)
    h, w = matte.shape
    x = int(rng.integers(0, max(1, fw - w)))
    y = int(rng.integers(0, max(1, fh - h)))
    return Placed(small, matte, x, y)


def place_animal(canvas: U8, photo: U8, alpha: F32 | None, width: float,
                 rng: np.random.Generator) -> Box:
    """``spot_animal`` pasted on ``canvas`` (a frame), in place; its opaque pixels' box."""
    placed = spot_animal(photo, alpha, width, rng)
    placed.paste(canvas)
    return placed.box(FRAME)


def spot_neighbour(photo: U8, alpha: F32 | None, box: Box, rng: np.random.Generator
                   ) -> Placed:
    """A second animal beside the one boxed by ``box``, as the clips' groups walk (see
    ``NEIGHBOUR_SHARE``): half to twice its size, from touching it to nearly over it,
    bottoms near level."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    width = bw * math.exp(rng.uniform(*NEIGHBOUR_WIDTH))
    small, matte = fit_animal(photo, alpha, width, FRAME[1] - 2, rng)
    h, w = matte.shape
    side = 1 if rng.random() < 0.5 else -1
    cx = (box[0] + box[2]) / 2 + side * rng.uniform(*NEIGHBOUR_GAP) * (bw + w) / 2
    bottom = min(box[3] + rng.normal(0, 0.2 * bh), FRAME[1])
    return Placed(small, matte, round(cx - w / 2), round(bottom - h))


def animal_crop(photo: U8, spec: CropSpec, size: tuple[int, int], seed: int,
                rng: np.random.Generator, alpha: F32 | None = None,
                neighbour: tuple[U8, F32 | None] | None = None) -> U8:
    """A photo as the agent would crop it off a wide park shot (see the module doc);
    ``alpha``: the photo's matte (None: the whole photo is the animal); ``neighbour``:
    another animal's photo and matte, to walk beside it (in front or behind), the crop
    still the first one's."""
    fw, _ = FRAME
    canvas = backdrops(seed)[int(rng.integers(BACKDROPS))].copy()
    lo, hi = WIDTH_RANGE
    width = fw * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    animal = spot_animal(photo, alpha, width, rng)
    box = animal.box(FRAME)
    layers = [animal]
    if neighbour is not None:
        beside = spot_neighbour(*neighbour, box, rng)
        in_front = rng.random() < 0.5 and hidden_share(beside, animal) <= MOST_HIDDEN
        layers = [animal, beside] if in_front else [beside, animal]
    for layer in layers:
        layer.paste(canvas)
    return film(canvas, box, spec, size, seed, rng)


def film(canvas: U8, box: Box, spec: CropSpec, size: tuple[int, int], seed: int,
         rng: np.random.Generator) -> U8:
    """The agent's crop of a jittered ``box`` on ``canvas`` after the clips' camera."""
    fw, fh = FRAME
    box = jitter_box(box, rng)
    # The light and weather of the park clips' own camera (the same code), then, at times,
    # optics the clips do not have: motion blur, heavy JPEG (on the crop's surroundings).
    look = camera_look(seed)
    canvas = look.apply(canvas, int(rng.integers(LOOK_FRAMES)), rng)
    optics = pick_optics(rng)
    if optics != "clean":
        x0, y0, x1, y1 = (int(v) for v in square_around(box, spec.context + 0.1))
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(max(x1, x0 + 8), fw), min(max(y1, y0 + 8), fh)
        canvas[y0:y1, x0:x1] = condition(canvas[y0:y1, x0:x1], optics, rng)
    return cut_crop(canvas, box, spec, size)


def random_box(rng: np.random.Generator) -> Box:
    """A box of 3 % to 50 % of the frame's width, any shape a region takes, in the frame
    (up to a tenth of it past the left or right edge)."""
    fw, fh = FRAME
    width = fw * math.exp(rng.uniform(math.log(0.03), math.log(0.5)))
    height = min(width * rng.uniform(0.5, 1.6), fh)
    x0 = rng.uniform(-0.1 * width, fw - 0.9 * width)
    y0 = rng.uniform(0, fh - height)
    return x0, y0, x0 + width, y0 + height


def mined_crop(crop: U8, size: tuple[int, int], rng: np.random.Generator) -> U8:
    """A crop the agent uploaded (at its model's input size, with its context): a square
    of 85 % to 100 % of it somewhere inside, at times flipped, blurred or JPEG-worn."""
    h, w = crop.shape[:2]
    side = min(h, w) * rng.uniform(0.85, 1.0)
    x, y = rng.uniform(0, w - side), rng.uniform(0, h - side)
    img = crop if rng.random() < 0.5 else np.ascontiguousarray(crop[:, ::-1])
    out = cut_crop(img, (x, y, x + side, y + side), CropSpec(context=0.0), size)
    return condition(out, pick_optics(rng), rng)


# In low light a dark walker on a dark lawn stands out from the background model only
# in parts (the head, the legs in motion): on the night clips 443 of the agent's regions
# were such a part against 39 by day, and 22 of them read as an animal (none of the
# whole walkers did), enough to confirm a false animal now and then. So some "other"
# crops are a part of a distractor, as such a region cuts it.
PART_SHARE = 0.4  # of the distractor crops
PART_HEIGHT = (0.15, 0.6)  # a part's height over the distractor's
PART_WIDTH = (0.4, 1.0)


def part_box(box: Box, rng: np.random.Generator) -> Box:
    """A piece of ``box`` anywhere inside it (a head, legs, a side): ``PART_HEIGHT`` of
    its height, ``PART_WIDTH`` of its width."""
    w, h = box[2] - box[0], box[3] - box[1]
    pw, ph = w * rng.uniform(*PART_WIDTH), h * rng.uniform(*PART_HEIGHT)
    x0, y0 = box[0] + rng.uniform(0, w - pw), box[1] + rng.uniform(0, h - ph)
    return x0, y0, x0 + pw, y0 + ph


class OtherSource:
    """Crops of the "other" class mined from park clips without animals (see the module doc):
    one long clip per seed, distractor-heavy, through every scene condition."""

    def __init__(self, seed: int, seconds: float = 120.0) -> None:
        schedule = Schedule(empty_share=1.0, animals_per_minute=0, distractors_per_minute=12)
        self.scene = Scene(SceneSpec(width=FRAME[0], height=FRAME[1], seconds=seconds,
                                     fps=5.0, seed=seed, schedule=schedule,
                                     conditions=SCENE_CONDITIONS))

    def crop(self, spec: CropSpec, size: tuple[int, int], rng: np.random.Generator) -> U8:
        frame = self.scene.render(int(rng.integers(self.scene.frame_count)))
        seen = [o.box for o in frame.objects if o.visible_fraction >= 0.3]
        if seen and rng.random() < 0.6:
            x, y, w, h = seen[int(rng.integers(len(seen)))]
            box: Box = (x, y, x + w, y + h)
            if rng.random() < PART_SHARE:
                box = part_box(box, rng)
            box = jitter_box(box, rng)
        else:
            box = random_box(rng)
        img = frame.image
        optics = pick_optics(rng)
        if optics != "clean":  # the clip has its light and weather already
            img = condition(img, optics, rng)
        return cut_crop(img, box, spec, size)

    def frame_crops(self, k: int, spec: CropSpec, size: tuple[int, int],
                    rng: np.random.Generator, count: int) -> list[U8]:
        """``count`` crops of frame ``k``: its distractors in view (jittered boxes), then
        boxes anywhere (lawn, trees, the clock; at night and in rain the agent's regions
        there are noise and streaks), each through optics at times."""
        frame = self.scene.render(k)
        seen = [o.box for o in frame.objects if o.visible_fraction >= 0.3][:count]
        boxes = [jitter_box((x, y, x + w, y + h), rng) for x, y, w, h in seen]
        boxes += [random_box(rng) for _ in range(count - len(boxes))]
        out = []
        for box in boxes:
            optics = pick_optics(rng)
            img = frame.image if optics == "clean" else condition(frame.image, optics, rng)
            out.append(cut_crop(img, box, spec, size))
        return out


__all__ = ["FRAME", "NEIGHBOUR_SHARE", "OTHER", "REGION_CROPS", "OtherSource", "Placed",
           "animal_crop", "backdrops", "condition", "cut_crop", "film", "fit_animal",
           "hidden_share", "jitter_box", "mined_crop", "part_box", "place_animal",
           "random_box", "spot_animal", "spot_neighbour", "square_around"]
