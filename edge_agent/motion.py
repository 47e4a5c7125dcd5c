"""Cheap motion gating: skip inference while a camera's scene is static.

A frame is shrunk to a 32x24 grey thumbnail (one ``cv2.resize`` with area
averaging, one ``cvtColor``; both into buffers allocated once) and compared
with the thumbnail of the last *classified* frame, so slow changes add up
until they cross the threshold. At least one frame every ``max_skip_seconds``
is classified anyway, so a static scene still shows up in telemetry.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

THUMB_W, THUMB_H = 32, 24


class MotionGate:
    def __init__(self, threshold: float, max_skip_seconds: float) -> None:
        self.threshold = threshold
        self.max_skip_seconds = max_skip_seconds
        self._small: npt.NDArray[np.uint8] = np.empty((THUMB_H, THUMB_W, 3), np.uint8)
        self._grey: npt.NDArray[np.uint8] = np.empty((THUMB_H, THUMB_W), np.uint8)
        self._reference: npt.NDArray[np.uint8] = np.empty((THUMB_H, THUMB_W), np.uint8)
        self._diff: npt.NDArray[np.uint8] = np.empty((THUMB_H, THUMB_W), np.uint8)
        self._reference_at: float | None = None
        self.last_difference = 0.0

    def static(self, bgr: npt.NDArray[np.uint8], now: float) -> bool:
        """True when ``bgr`` may be skipped; False (and it becomes the reference) otherwise."""
        cv2.resize(bgr, (THUMB_W, THUMB_H), dst=self._small, interpolation=cv2.INTER_AREA)
        cv2.cvtColor(self._small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        if self._reference_at is not None and now - self._reference_at < self.max_skip_seconds:
            cv2.absdiff(self._grey, self._reference, dst=self._diff)
            self.last_difference = float(cv2.mean(self._diff)[0])
            if self.last_difference < self.threshold:
                return True
        np.copyto(self._reference, self._grey)
        self._reference_at = now
        return False
