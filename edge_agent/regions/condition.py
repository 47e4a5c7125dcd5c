"""The light and weather a camera sees (day, dusk, night, IR, rain), from a frame's
input statistics.

The rule, on the frame's mean luma (``brightness``, 0-255), mean saturation
(``(max - min) / max`` over the colour channels, 0-1), the same statistics as the
drift histograms (``protocols.features``), and its rain streak energy (``streaks``:
``MotionRegions.streaks``, grey levels of thin, tall, bright lines):

* ``ir``: saturation below 0.15: the camera sees no colour (an infrared illuminator;
  JPEG chroma noise and a tinted lens keep real IR frames a little above 0);
* else ``night``: brightness below 40;
* else ``dusk``: brightness below 80;
* else ``rain``: streak energy of at least 1.5;
* else ``day``.

Rain is weather, not light, but a camera looks different in it (streaks, a grey veil,
less colour), so it is a condition of its own: its windows get their own baseline
instead of alarming against a day baseline learned on dry days. Only daylight is
tested for rain: a dusk or night camera's noise reads as streaks (up to 0.8 where dry
days stay under 0.7 and rain measured 3 to 12, on the park renderer at 640 x 480). A
dirty or misfocused lens smears streaks away (under 0.3), so blur is never rain.

A window's condition is the majority over its frames (ties: the first in
``CONDITIONS`` order). Dark colour frames read as saturated (noise divided by a small
maximum), which is why IR is decided by saturation before darkness.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from protocols.messages import Condition

# Indices are counted in windows: a new condition goes at the end.
CONDITIONS: Final[tuple[Condition, ...]] = ("day", "dusk", "night", "ir", "rain")
IR_SATURATION: Final = 0.15
NIGHT_BRIGHTNESS: Final = 40.0
DUSK_BRIGHTNESS: Final = 80.0
RAIN_STREAKS: Final = 1.5


def condition_index(brightness: npt.ArrayLike, saturation: npt.ArrayLike,
                    streaks: npt.ArrayLike = 0.0) -> npt.NDArray[np.intp]:
    """Index into ``CONDITIONS`` of each frame (no streaks given: never rain)."""
    b = np.asarray(brightness, np.float64)
    s = np.asarray(saturation, np.float64)
    out = np.where(np.asarray(streaks, np.float64) >= RAIN_STREAKS, 4, 0)
    out = np.where(b < DUSK_BRIGHTNESS, 1, out)
    out = np.where(b < NIGHT_BRIGHTNESS, 2, out)
    return np.asarray(np.where(s < IR_SATURATION, 3, out), np.intp)


def condition_of(brightness: float, saturation: float, streaks: float = 0.0) -> Condition:
    """One frame's condition, in plain Python: the region analyzer asks once per frame,
    where numpy's calls on two scalars cost 30 us."""
    if saturation < IR_SATURATION:
        return "ir"
    if brightness < NIGHT_BRIGHTNESS:
        return "night"
    if brightness < DUSK_BRIGHTNESS:
        return "dusk"
    return "rain" if streaks >= RAIN_STREAKS else "day"


def condition_counts(brightness: npt.ArrayLike, saturation: npt.ArrayLike
                     ) -> npt.NDArray[np.int64]:
    """How many frames fall in each condition (``CONDITIONS`` order)."""
    idx = np.atleast_1d(condition_index(brightness, saturation))
    return np.bincount(idx, minlength=len(CONDITIONS)).astype(np.int64)


def majority(counts: npt.ArrayLike) -> Condition | None:
    """The window's condition: the most frequent one; None when no frame was measured."""
    c = np.asarray(counts)
    return CONDITIONS[int(np.argmax(c))] if c.sum() > 0 else None
