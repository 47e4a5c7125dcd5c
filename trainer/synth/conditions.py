"""How the camera renders the light of the moment, at video rate: day, dusk, night, IR, rain.

The still-image shifts of :mod:`trainer.synth.shifts` cost tens of milliseconds a frame
(float arithmetic on every pixel, fresh Gaussian noise). Here the same tone curves become
a 256-entry lookup table per frame, the sensor noise comes from a small bank of
pre-drawn noise fields at random offsets, and the rain's streaks from one pre-drawn layer
that scrolls down: a frame costs a few milliseconds. Conditions:

- day: a slow drift of the global light (clouds, auto-exposure) and read noise;
- dusk: the warm, dim tone curve of ``shifts.dusk_tone``;
- night: ``shifts.night_tone``, colour mostly lost, strong gain noise;
- ir: monochrome with the near-IR weights, contrast lift, a vignette from the
  illuminator's hot spot (the eye-shine is on the animals' sprites);
- rain: the haze of ``shifts._rain`` and falling streaks.

Consecutive day/dusk/night/rain spans cross-fade over a few seconds (dusk falls, it does
not switch); IR switches at once, as a camera's IR-cut filter does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ._draw import F32, U8
from .groundtruth import CONDITIONS, ConditionSpan
from .shifts import (
    IR_CONTRAST,
    IR_LIFT,
    IR_VIGNETTE,
    IR_WEIGHTS,
    RAIN_HAZE,
    RAIN_HAZE_SHARE,
    dusk_tone,
    night_tone,
    rain_streaks,
)

_BANK, _JITTER = 6, 16  # noise fields per condition; random offset range (pixels)
_READ_NOISE = 2.5  # grey levels: any camera's floor
_FADE_SECONDS = 3.0
_LEVELS = np.arange(256, dtype=np.float32).reshape(256, 1, 1)


def _noise_sd(condition: str, s: float) -> tuple[float, float]:
    """(luma, colour) noise standard deviations: gain noise grows as light falls."""
    return {"day": (0.0, _READ_NOISE), "dusk": (6 * s, _READ_NOISE),
            "night": (14 * s, 5 * s + _READ_NOISE), "ir": (4.0, _READ_NOISE),
            "rain": (0.0, _READ_NOISE)}[condition]


def _tone(condition: str, s: float) -> F32:
    """The condition's tone curve as a 256 x 1 x 3 table (before the global light)."""
    f = np.repeat(_LEVELS, 3, axis=2)
    if condition == "dusk":
        f = dusk_tone(f, s)
    elif condition == "night":
        f = night_tone(f, s)
    elif condition == "rain":  # overcast: dimmer, under a grey-blue veil
        haze = np.array(RAIN_HAZE, np.float32)
        f = np.float32(0.85) * (f * (1 - RAIN_HAZE_SHARE * s) + haze * RAIN_HAZE_SHARE * s)
    elif condition == "ir":  # a fixed stretch about mid-grey (frames vary, the curve not)
        f = (f - 128) * IR_CONTRAST + 128 + IR_LIFT
    return np.asarray(f, np.float32)


class CameraLook:
    """Per clip: precomputed tables, noise and rain; per frame: ``apply(frame, k, rng)``.

    Everything precomputed is seeded from ``seed`` alone and per-frame draws come from the
    caller's per-frame generator, so frame ``k`` looks the same whatever was rendered
    before it.
    """

    def __init__(self, spans: Sequence[ConditionSpan], width: int, height: int, fps: float,
                 seed: int, noise: bool = True, light_drift: bool = True):
        for span in spans:
            if span.condition not in CONDITIONS:
                raise ValueError(f"unknown condition {span.condition!r}")
        self.spans, self.w, self.h, self.fps = list(spans), width, height, fps
        self.seed, self.noise = seed, noise
        rng = np.random.default_rng([seed, 3])
        self._drift = (rng.uniform(0.03, 0.07) if light_drift else 0.0,
                       rng.uniform(40, 120), rng.uniform(0, 2 * math.pi))
        self._noise: dict[str, list[tuple[U8, U8]]] = {}
        self._rain: U8 | None = None
        self._vignette: U8 | None = None
        self._ir_matrix = np.array([IR_WEIGHTS] * 3, np.float32)

    def span_at(self, k: int) -> int:
        for i, span in enumerate(self.spans):
            if span.start_frame <= k < span.end_frame:
                return i
        return len(self.spans) - 1

    def is_ir(self, k: int) -> bool:
        return self.spans[self.span_at(k)].condition == "ir"

    def _gain(self, k: int) -> float:
        amp, period, phase = self._drift
        return 1.0 + amp * math.sin(2 * math.pi * k / (self.fps * period) + phase)

    def _lut(self, k: int) -> U8:
        i = self.span_at(k)
        span = self.spans[i]
        lut = _tone(span.condition, span.severity)
        fade = round(_FADE_SECONDS * self.fps)
        into = k - span.start_frame
        if i > 0 and into < fade and "ir" not in (span.condition, self.spans[i - 1].condition):
            prev = self.spans[i - 1]
            a = (into + 1) / (fade + 1)
            lut = (1 - a) * _tone(prev.condition, prev.severity) + a * lut
        lut8: U8 = np.clip(lut * self._gain(k), 0, 255).astype(np.uint8)
        return lut8

    def _bank(self, condition: str, s: float) -> list[tuple[U8, U8]]:
        """Noise fields as (positive, negative) parts: two saturating uint8 adds per frame."""
        key = f"{condition}:{s}"
        if key not in self._noise:
            luma, colour = _noise_sd(condition, s)
            rng = np.random.default_rng([self.seed, 1, CONDITIONS.index(condition), round(s * 1e3)])
            shape = (self.h + _JITTER, self.w + _JITTER)
            bank = []
            for _ in range(_BANK):
                n = rng.normal(0, colour, (*shape, 3)).astype(np.float32)
                if luma:
                    n += rng.normal(0, luma, shape).astype(np.float32)[..., None]
                n = np.rint(n)
                bank.append((np.clip(n, 0, 255).astype(np.uint8),
                             np.clip(-n, 0, 255).astype(np.uint8)))
            self._noise[key] = bank
        return self._noise[key]

    def _add_noise(self, frame: U8, condition: str, s: float, rng: np.random.Generator) -> U8:
        pos, neg = self._bank(condition, s)[int(rng.integers(_BANK))]
        oy, ox = (int(v) for v in rng.integers(_JITTER, size=2))
        window = (slice(oy, oy + self.h), slice(ox, ox + self.w))
        return np.asarray(cv2.subtract(cv2.add(frame, pos[window]), neg[window]), np.uint8)

    def _ir(self, frame: U8) -> U8:
        if self._vignette is None:
            yy, xx = np.mgrid[0:self.h, 0:self.w].astype(np.float32)
            rad2 = ((xx - self.w / 2) / (self.w / 2)) ** 2 + ((yy - self.h / 2) / (self.h / 2)) ** 2
            v = np.clip(255 * (1 - IR_VIGNETTE * rad2), 0, 255).astype(np.uint8)
            self._vignette = np.ascontiguousarray(np.repeat(v[..., None], 3, axis=2))
        grey = np.asarray(cv2.transform(frame, self._ir_matrix), np.uint8)
        return np.asarray(cv2.multiply(grey, self._vignette, scale=1 / 255), np.uint8)

    def _rain_streaks(self, frame: U8, k: int, s: float) -> U8:
        if self._rain is None:  # one layer, tiled twice, scrolled down as the drops fall
            layer = rain_streaks(np.random.default_rng([self.seed, 2]), self.h, self.w, s)
            # Added, not blended: a streak brightens what is behind it (saturating), and
            # one uint8 add costs a tenth of a per-pixel blend.
            bright = np.rint(layer * 200).astype(np.uint8)
            self._rain = np.ascontiguousarray(np.repeat(np.vstack([bright, bright])[..., None],
                                                        3, axis=2))
        fall = round(k * self.h / self.fps) % self.h  # drops cross the frame in about 1 s
        return np.asarray(cv2.add(frame, self._rain[self.h - fall:2 * self.h - fall]), np.uint8)

    def apply(self, frame: U8, k: int, rng: np.random.Generator) -> U8:
        """Frame ``k`` of the scene as this camera delivers it (a new array)."""
        span = self.spans[self.span_at(k)]
        cond, s = span.condition, span.severity
        if cond == "ir":
            frame = self._ir(frame)
        out = np.asarray(cv2.LUT(frame, self._lut(k)), np.uint8)
        if cond == "night":  # colour fades with the light
            grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            out = np.asarray(cv2.addWeighted(out, 1 - 0.6 * s, grey, 0.6 * s, 0), np.uint8)
        elif cond == "rain":
            out = self._rain_streaks(out, k, s)
        if self.noise:
            out = self._add_noise(out, cond, s, rng)
        return out


def spans_for(conditions: Sequence[str], severity: float, n_frames: int) -> list[ConditionSpan]:
    """Equal consecutive spans, one per condition (e.g. day, dusk, night)."""
    if not conditions:
        raise ValueError("conditions must not be empty, e.g. ('day',) or ('day', 'dusk', 'night')")
    cuts = np.linspace(0, n_frames, len(conditions) + 1).round().astype(int)
    return [ConditionSpan.model_validate({"condition": c, "start_frame": int(a),
                                          "end_frame": int(b),
                                          "severity": 0.0 if c == "day" else severity})
            for c, a, b in zip(conditions, cuts[:-1], cuts[1:], strict=True)]
