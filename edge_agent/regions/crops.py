"""Square crops of regions at the model's input size, into one buffer kept between frames.

A crop inside the frame is one ``cv2.resize`` of the frame's ROI (bilinear, like the
whole-frame path and the trainer's crop). One that leaves the frame is one
``cv2.warpAffine`` with the same pixel-centre mapping and ``pad_value`` outside.
With the release's ``CropSpec.destreak``, a square streaked as rain streaks it is opened
across first, as the trainer did to the crops the model learnt from
(``trainer.crops.cut_crop``: a test holds the two to the same pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from protocols import CropSpec
from protocols.manifest import STREAK_LEVELS

from .boxes import Box, square_around

U8 = npt.NDArray[np.uint8]


class CropCutter:
    def __init__(self, width: int, height: int, spec: CropSpec, capacity: int) -> None:
        self.size = (width, height)
        self.spec = spec
        self.images: U8 = np.empty((capacity, height, width, 3), np.uint8)
        self._matrix = np.zeros((2, 3), np.float64)
        self._border = (spec.pad_value,) * 3
        self._across = np.ones((1, max(spec.destreak, 1)), np.uint8)

    def cut(self, bgr: U8, boxes: Sequence[Box]) -> U8:
        """Crop each box's square (with context) into ``images``; return the first k."""
        height, width = bgr.shape[:2]
        out_w, out_h = self.size
        m = self._matrix
        for i, box in enumerate(boxes[:len(self.images)]):
            x0, y0, x1, y1 = (round(v) for v in square_around(box, self.spec.context))
            x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
            dst = self.images[i]
            if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
                square = bgr[y0:y1, x0:x1]
                if self.spec.destreak and self._streaked(square):
                    square = self._opened(square)
                cv2.resize(square, self.size, dst=dst, interpolation=cv2.INTER_LINEAR)
                continue
            sx, sy = (x1 - x0) / out_w, (y1 - y0) / out_h  # dst pixel -> src pixel, centres
            m[0, 0], m[0, 2] = sx, x0 + 0.5 * sx - 0.5
            m[1, 1], m[1, 2] = sy, y0 + 0.5 * sy - 0.5
            cv2.warpAffine(self._destreaked(bgr, max(x0, 0), max(y0, 0), min(x1, width),
                                            min(y1, height)), m, self.size, dst=dst,
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=self._border)
        return self.images[:min(len(boxes), len(self.images))]

    def _opened(self, img: U8) -> U8:
        return np.asarray(cv2.morphologyEx(img, cv2.MORPH_OPEN, self._across), np.uint8)

    def _streaked(self, img: U8) -> bool:
        """Rain's streaks: an opening across takes many grey levels out of the square (see
        ``protocols.manifest.STREAK_LEVELS``)."""
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        lost = cv2.mean(cv2.subtract(grey, cv2.morphologyEx(grey, cv2.MORPH_OPEN,
                                                            self._across)))[0]
        return bool(lost >= STREAK_LEVELS)

    def _destreaked(self, bgr: U8, x0: int, y0: int, x1: int, y1: int) -> U8:
        """``bgr`` with its part [y0:y1, x0:x1] opened if it is streaked, else itself."""
        part = bgr[y0:y1, x0:x1]
        if not self.spec.destreak or part.size == 0 or not self._streaked(part):
            return bgr
        out = bgr.copy()
        out[y0:y1, x0:x1] = self._opened(part)
        return out
