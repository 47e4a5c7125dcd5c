"""What the park camera does to a training crop, drawn with a probability per condition.

A crop is shot under one *scene* condition, the light and weather of the park clips' own
camera (``trainer.synth.conditions.CameraLook``, the same code, so a night crop in
training and a night frame on the agent look alike): day, dusk, night (under-exposed,
colour mostly gone, gain noise), IR (grey near-IR levels, the illuminator's hot spot) or
rain (haze and streaks); then, at times, *optics* the clips' camera lacks: motion blur or
a starved JPEG encoder. ``SCENE_MIX`` and ``OPTICS_MIX`` say how often.

The mix leans to the conditions a linear probe on frozen ImageNet features reads worst
(night, rain: docs/performance.md), and "other" crops are drawn with the same mix, so a
condition never tells the probe "animal" or "no animal" by itself.

Optics are sized in the pixels of the 640 x 480 frame, before a crop is cut and resized:
a blur of 40 frame pixels smears a small animal more than a big one, as on the agent
(``bench/region_accuracy.py`` blurs and compresses whole frames the same way).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from .synth.conditions import CameraLook
from .synth.shifts import motion_kernel

U8 = npt.NDArray[np.uint8]

SCENE_MIX: dict[str, float] = {"day": 0.2, "dusk": 0.1, "night": 0.3, "ir": 0.15,
                               "rain": 0.25}
OPTICS_MIX: dict[str, float] = {"clean": 0.6, "blur": 0.2, "jpeg": 0.2}
JPEG_QUALITY = (10, 30)  # a low-bitrate NVR stream
# Motion blur: a streak of 5 % to 11 % of the frame's height (severity 0.4 to 0.9 of
# trainer.synth.shifts' blur, which the benchmark puts on whole frames at 0.7).
BLUR_SEVERITY = (0.4, 0.9)
FRAME_HEIGHT = 480


@dataclass(frozen=True)
class Look:
    """The conditions one crop is shot under."""

    scene: str  # a SCENE_MIX key
    optics: str  # an OPTICS_MIX key


def _pick(mix: dict[str, float], rng: np.random.Generator) -> str:
    names = list(mix)
    p = np.array([mix[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def draw_look(rng: np.random.Generator) -> Look:
    """A scene condition and optics, at their shares of ``SCENE_MIX`` and ``OPTICS_MIX``."""
    return Look(_pick(SCENE_MIX, rng), _pick(OPTICS_MIX, rng))


def pick_optics(rng: np.random.Generator) -> str:
    """Optics alone (for crops whose light and weather are already in them)."""
    return _pick(OPTICS_MIX, rng)


def frame_in(look: CameraLook, scene: str, rng: np.random.Generator) -> int:
    """A random frame of ``look``'s timeline under ``scene`` (its first span of it)."""
    for span in look.spans:
        if span.condition == scene:
            return int(rng.integers(span.start_frame, span.end_frame))
    raise ValueError(f"the camera's timeline has no {scene!r} span: "
                     f"give it one of each of {sorted(SCENE_MIX)}")


def jpeg(img: U8, quality: int) -> U8:
    """``img`` through a JPEG encoder at ``quality`` (1-100): blocks, ringing, lost detail."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the crop")
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def motion_blur(img: U8, severity: float, angle_deg: float,
                frame_height: int = FRAME_HEIGHT) -> U8:
    """``img`` (a part of a frame ``frame_height`` tall) smeared along ``angle_deg`` as
    ``trainer.synth.shifts`` blurs a whole frame at ``severity``: a streak of
    ``0.12 * severity`` of the frame's height, then a slight defocus."""
    length = 1 + round(severity * 0.12 * frame_height)
    out = img
    if length >= 3:
        k = motion_kernel(length | 1, angle_deg)
        out = np.asarray(cv2.filter2D(img, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT),
                         np.uint8)
    return np.asarray(cv2.GaussianBlur(out, (0, 0), 0.3 + 1.2 * severity), np.uint8)


def apply_optics(img: U8, optics: str, rng: np.random.Generator) -> U8:
    """``img`` through ``optics`` (clean, blur, jpeg) at a random strength."""
    if optics == "clean":
        return img
    if optics == "blur":
        return motion_blur(img, float(rng.uniform(*BLUR_SEVERITY)), float(rng.uniform(0, 180)))
    if optics == "jpeg":
        return jpeg(img, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    raise ValueError(f"unknown optics {optics!r}: use one of {sorted(OPTICS_MIX)}")


def chroma(img: U8) -> float:
    """Mean spread between a pixel's channels, in [0, 1]: near 0 for a grey (IR) picture
    whatever its brightness (HSV saturation would read a dark pixel's noise as colour)."""
    f = img.astype(np.int16)
    return float((f.max(axis=2) - f.min(axis=2)).mean()) / 255.0


def high_frequency(img: U8) -> float:
    """Mean squared Laplacian of the grey image: fine detail that blur and JPEG remove."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.mean(np.square(cv2.Laplacian(grey, cv2.CV_32F))))


__all__ = ["BLUR_SEVERITY", "JPEG_QUALITY", "OPTICS_MIX", "SCENE_MIX", "Look", "apply_optics",
           "chroma", "draw_look", "frame_in", "high_frequency", "jpeg", "motion_blur",
           "pick_optics"]
