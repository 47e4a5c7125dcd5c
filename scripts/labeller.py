"""The demo's simulated labeller: it labels the crops agents upload (``/api/v1/samples``)
from the ground truth of the clips their cameras play, as a person looking at each crop
would, so realized accuracy (``/api/v1/drift/accuracy``) is measured, not assumed.

A person sees which animal a crop shows. The labeller finds it instead: every object of
every frame of a camera's clips (the sidecar's boxes) is cut the way the agent cuts a
region (a square with context, ``edge_agent.regions.boxes.square_around``) and kept as a
small grey signature; an uploaded crop gets the label of the object whose signature is
nearest (correlation). A crop nearest to a person, ball, leaves or shadow is rejected (no
animal: it never enters a dataset); one that matches nothing well is left alone, as a
person unsure of it would.

A person labelling a few crops per camera picks them spread over time, not a burst of
the same animal in the same pose: the labeller takes at most one crop per ``spacing``
seconds of capture time per device and release, so a camera's labels cover its clip's
animals and its accuracy interval is not drawn from near-copies of one crop. It labels a
few per scene the camera shows (a new clip: night fell, the lamps dimmed), so a change
that makes the model read worse shows up in the labels taken after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import numpy.typing as npt

from edge_agent.regions.boxes import square_around
from scripts.loop import Loop
from trainer.synth.groundtruth import FrameObject, SceneTruth, sidecar_path

F32 = npt.NDArray[np.float32]
SIDE = 24  # signature side in pixels: enough to tell animals apart, cheap to compare
MIN_VISIBLE = 0.5  # objects mostly hidden or out of frame make no reference crop
# Correlation below which a crop matches nothing: left unlabelled. Replaying a demo clip
# through the agent, animal labels from matches in [0.6, 0.75) were right for 64 of 140
# crops (grass and bushes at the frame's padded edge, a tail, a dog in front of a cat);
# all 289 at 0.75 or more were right, and so were all 207 rejections from 0.6.
MIN_SCORE = 0.75
MIN_REJECT_SCORE = 0.6  # a crop nearest to a distractor or scenery is rejected from here
# Grass, paths and bushes look like an animal's crop with the animal left out: the same
# replay named such crops "dog" at 0.80-0.85. Scenery references answer them instead.
SCENERY = "scenery"
SCENERY_PER_FRAME = 2


def signature(bgr: npt.NDArray[np.uint8]) -> F32:
    """A crop as a zero-mean, unit-length grey vector of SIDE x SIDE pixels."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
    small = cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return (small / norm).ravel() if norm > 0 else small.ravel()


def _square(frame: npt.NDArray[np.uint8], box: tuple[int, int, int, int],
            context: float) -> npt.NDArray[np.uint8]:
    x, y, w, h = box
    x0, y0, x1, y1 = (round(v) for v in square_around((x, y, x + w, y + h), context))
    height, width = frame.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        frame = np.asarray(cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT,
                                              value=(114, 114, 114)), np.uint8)
    return frame[y0 + pad:y1 + pad, x0 + pad:x1 + pad]


def _scenery(rng: np.random.Generator, sizes: list[tuple[int, int]],
             objects: Iterable[FrameObject], width: int, height: int,
             tries: int = SCENERY_PER_FRAME) -> list[tuple[int, int, int, int]]:
    """Boxes of an animal's size where the frame shows no object (some leave the frame,
    as the agent's regions do at its edges)."""
    out = []
    for _ in range(tries):
        w, h = sizes[int(rng.integers(len(sizes)))]
        x = int(rng.integers(-w // 2, max(width - w // 2, -w // 2 + 1)))
        y = int(rng.integers(-h // 2, max(height - h // 2, -h // 2 + 1)))
        if not any(x < ox + ow + w // 4 and ox < x + w + w // 4 and
                   y < oy + oh + h // 4 and oy < y + h + h // 4
                   for ox, oy, ow, oh in (o.box for o in objects)):
            out.append((x, y, w, h))
    return out


@dataclass
class ClipTruth:
    """Reference signatures of every visible object of one clip, with its label, and of
    its scenery where no object is (a crop nearest to those shows no animal)."""

    signatures: F32
    labels: list[str]
    animal: list[bool]

    @classmethod
    def load(cls, clip: Path, context: float = 0.15, step: int = 2) -> ClipTruth:
        """Decode ``clip`` once and cut each object of its sidecar every ``step`` frames
        (neighbouring frames look alike)."""
        truth = SceneTruth.load(sidecar_path(clip))
        cap = cv2.VideoCapture(str(clip))
        sigs: list[F32] = []
        labels: list[str] = []
        animal: list[bool] = []
        sizes = [o.box[2:] for rows in range(truth.frame_count)
                 for o in truth.objects(rows, "animal")] or [(truth.width // 8,) * 2]
        rng = np.random.default_rng(truth.seed)
        try:
            for k in range(truth.frame_count):
                ok, frame = cap.read()
                if not ok:
                    break
                if k % step:
                    continue
                image = np.asarray(frame, np.uint8)
                objects = truth.objects(k)
                for obj in objects:
                    if obj.visible_fraction >= MIN_VISIBLE and min(obj.box[2:]) >= 4:
                        sigs.append(signature(_square(image, obj.box, context)))
                        labels.append(obj.label)
                        animal.append(obj.kind == "animal")
                for box in _scenery(rng, sizes, objects, truth.width, truth.height):
                    sigs.append(signature(_square(image, box, context)))
                    labels.append(SCENERY)
                    animal.append(False)
        finally:
            cap.release()
        if not sigs:
            raise ValueError(f"{clip}: its sidecar shows no object to label by")
        return cls(np.stack(sigs), labels, animal)


@dataclass(frozen=True)
class Verdict:
    """What the labeller decided for one crop: a label, a rejection, or nothing."""

    label: str | None  # an animal's class; None with ``reject``: no animal
    reject: bool
    score: float


def judge(crop: npt.NDArray[np.uint8], truths: Iterable[ClipTruth],
          min_score: float = MIN_SCORE, min_reject: float = MIN_REJECT_SCORE) -> Verdict:
    """The label of the object nearest to ``crop`` among the clips' objects (an animal's
    from ``min_score``; no animal, when that object is a distractor, from ``min_reject``)."""
    sig = signature(crop)
    best: tuple[float, str, bool] | None = None
    for truth in truths:
        scores = truth.signatures @ sig
        i = int(np.argmax(scores))
        if best is None or float(scores[i]) > best[0]:
            best = (float(scores[i]), truth.labels[i], truth.animal[i])
    if best is None:
        return Verdict(None, False, 0.0)
    score, label, is_animal = best
    if score < (min_score if is_animal else min_reject):
        return Verdict(None, False, score)
    return Verdict(label if is_animal else None, not is_animal, score)


def decode(jpeg: bytes) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("the sample is not a decodable image")
    return np.asarray(image, np.uint8)


class Spacing:
    """Capture times already labelled per key: a new one must be ``seconds`` from each."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._taken: dict[tuple[str, str], list[datetime]] = {}

    def free(self, key: tuple[str, str], at: datetime) -> bool:
        return all(abs((at - t).total_seconds()) >= self.seconds
                   for t in self._taken.get(key, ()))

    def take(self, key: tuple[str, str], at: datetime) -> None:
        self._taken.setdefault(key, []).append(at)


class SimulatedLabeller(threading.Thread):
    """Labels new samples every few seconds through the API, as an operator at the Label
    page would: at most ``budget`` per device, release and scene the camera shows (a few,
    not all of them)."""

    # A few per device, release and scene: fewer than [drift] min_labels (20) on the day
    # camera's one scene, because a regions model's crops score below the held-out
    # accuracy of its photos on every camera (see docs/drift.md), so 20 labels would raise
    # the accuracy alert there too. A night camera's night and dimmed-night labels pool.
    # One every ``spacing`` s: an agent uploads its first ten crops within two seconds
    # (its token bucket starts full), all of one animal.
    def __init__(self, loop: Loop, budget: int = 12, interval: float = 3.0,
                 spacing: float = 5.0) -> None:
        super().__init__(name="simulated-labeller", daemon=True)
        self.loop, self.budget, self.interval = loop, budget, interval
        self.spacing = Spacing(spacing)
        self.clips: dict[str, list[Path]] = {}  # device -> the clips its camera played
        self._truths: dict[Path, ClipTruth] = {}
        self.done: dict[tuple[str, str, int], int] = {}  # (device, release, scene) -> labelled
        self.tally = {"labelled": 0, "rejected": 0, "unsure": 0, "errors": 0}
        self._halt = threading.Event()
        self._seen: set[int] = set()

    def watch(self, device_id: str, clip: Path) -> None:
        """The device's camera plays ``clip`` (from now on, or from its next loop)."""
        self.clips.setdefault(device_id, []).append(clip)  # loaded by the labelling thread

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.label_new()
            except (httpx.HTTPError, OSError, ValueError, KeyError):
                self.tally["errors"] += 1  # the next pass tries again

    def label_new(self) -> None:
        for sample in self.loop.api("/samples", status="new", limit=200)["items"]:
            key = (sample["device_id"], sample["release_id"] or "")
            if sample["id"] in self._seen or sample["device_id"] not in self.clips:
                continue
            self._seen.add(sample["id"])
            scene = (*key, len(self.clips[sample["device_id"]]))
            if self.done.get(scene, 0) >= self.budget:
                continue
            at = datetime.fromisoformat(sample["captured_at"])
            if not self.spacing.free(key, at):
                continue
            crop = decode(self.loop.get_bytes(f"/artifacts/{sample['image_sha256']}"))
            verdict = judge(crop, [self._truth(c) for c in self.clips[sample["device_id"]]])
            if verdict.label is not None:
                self.loop.patch(f"/samples/{sample['id']}", {
                    "status": "labelled", "label": verdict.label,
                    "note": f"demo labeller: clip ground truth (match {verdict.score:.2f})"})
                self.done[scene] = self.done.get(scene, 0) + 1
                self.spacing.take(key, at)
                self.tally["labelled"] += 1
            elif verdict.reject:
                self.loop.patch(f"/samples/{sample['id']}", {
                    "status": "rejected", "note": "demo labeller: no animal in the crop"})
                self.tally["rejected"] += 1
            else:
                self.tally["unsure"] += 1

    def _truth(self, clip: Path) -> ClipTruth:
        if clip not in self._truths:
            self._truths[clip] = ClipTruth.load(clip)
        return self._truths[clip]


__all__ = ["ClipTruth", "SimulatedLabeller", "Spacing", "Verdict", "decode", "judge", "signature"]
