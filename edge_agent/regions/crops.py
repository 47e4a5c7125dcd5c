"""Square crops of regions at the model's input size, into one buffer kept between frames.

A crop inside the frame is one ``cv2.resize`` of the frame's ROI (bilinear, like the
whole-frame path and the trainer's crop). One that leaves the frame is one
``cv2.warpAffine`` with the same pixel-centre mapping and ``pad_value`` outside.
With the release's ``CropSpec.destreak``, a square streaked as rain streaks it is opened
across first, by the rule the trainer cut the crops the model learnt from with
(``protocols.destreak``; a test holds ``trainer.crops.cut_crop`` and this to the same
pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from protocols import CropSpec
from protocols.destreak import destreaked, opened, streaked

from .boxes import Box, square_around

U8 = npt.NDArray[np.uint8]


class CropCutter:
    def __init__(self, width: int, height: int, spec: CropSpec, capacity: int) -> None:
        self.size = (width, height)
        self.spec = spec
        self.images: U8 = np.empty((capacity, height, width, 3), np.uint8)
        self._matrix = np.zeros((2, 3), np.float64)
        self._border = (spec.pad_value,) * 3

    def cut(self, bgr: U8, boxes: Sequence[Box]) -> U8:
        """Crop each box's square (with context) into ``images``; return the first k."""
        height, width = bgr.shape[:2]
        out_w, out_h = self.size
        m = self._matrix
        across = self.spec.destreak
        for i, box in enumerate(boxes[:len(self.images)]):
            x0, y0, x1, y1 = (round(v) for v in square_around(box, self.spec.context))
            x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)
            dst = self.images[i]
            if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
                square = bgr[y0:y1, x0:x1]
                if across and streaked(square, across):
                    square = opened(square, across)
                cv2.resize(square, self.size, dst=dst, interpolation=cv2.INTER_LINEAR)
                continue
            sx, sy = (x1 - x0) / out_w, (y1 - y0) / out_h  # dst pixel -> src pixel, centres
            m[0, 0], m[0, 2] = sx, x0 + 0.5 * sx - 0.5
            m[1, 1], m[1, 2] = sy, y0 + 0.5 * sy - 0.5
            source = destreaked(bgr, max(x0, 0), max(y0, 0), min(x1, width),
                                min(y1, height), across) if across else bgr
            cv2.warpAffine(source, m, self.size, dst=dst,
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=self._border)
        return self.images[:min(len(boxes), len(self.images))]
