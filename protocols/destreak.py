"""Rain's streaks out of a region's square before it becomes a crop (``CropSpec.destreak``).

A park camera films rain as thin bright streaks, one or two pixels wide and tens long.
Over a crop they hide the animal from the frozen backbone: the clips' rain crops read
30 points worse than the same crops by day, and the training crops' own rain, the same
camera's, no better (docs/performance.md, "Rain: the streaks, not the crops' recipe").
A grey opening with a short horizontal line takes out bright lines narrower than it and
keeps the rest; it is applied only to a square that is streaked, so every other crop is
cut as before.

The trainer cuts the crops a model learns from (``trainer.crops``) and the agent cuts
its release's crops (``edge_agent.regions.crops``) with these functions: the model sees
the same pixels in both. Needs numpy and OpenCV (the trainer's and the agent's, not the
control plane's), which is why ``protocols/__init__`` does not import this module.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import numpy.typing as npt

from .manifest import STREAK_LEVELS

U8 = npt.NDArray[np.uint8]


@functools.cache
def _line(across: int) -> U8:
    """A horizontal line ``across`` pixels long, built once per width (the agent cuts
    crops on every frame)."""
    line = np.ones((1, across), np.uint8)
    line.flags.writeable = False
    return line


def opened(img: U8, across: int) -> U8:
    """``img`` opened with a horizontal line ``across`` pixels long: bright lines
    narrower than it gone, the rest kept (per channel)."""
    return np.asarray(cv2.morphologyEx(img, cv2.MORPH_OPEN, _line(across)), np.uint8)


def streaked(img: U8, across: int) -> bool:
    """Whether ``img`` (BGR) holds thin bright streaks, as rain draws them: an opening
    across takes many grey levels out of it (see ``protocols.manifest.STREAK_LEVELS``)."""
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    lost = cv2.mean(cv2.subtract(grey, cv2.morphologyEx(grey, cv2.MORPH_OPEN,
                                                        _line(across))))[0]
    return bool(lost >= STREAK_LEVELS)


def destreaked(bgr: U8, x0: int, y0: int, x1: int, y1: int, across: int) -> U8:
    """``bgr`` with its part [y0:y1, x0:x1] opened (``opened``) if that part is streaked;
    else ``bgr`` itself."""
    part = bgr[y0:y1, x0:x1]
    if part.size == 0 or not streaked(part, across):
        return bgr
    out = bgr.copy()
    out[y0:y1, x0:x1] = opened(part, across)
    return out


__all__ = ["destreaked", "opened", "streaked"]
