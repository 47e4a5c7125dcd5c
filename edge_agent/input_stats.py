"""Input statistics of a batch of frames: the agent's fast path to the shared definition.

``protocols.features.input_stats`` defines brightness, contrast, sharpness and
saturation for the trainer's reference profile and the agent's windows alike; the
agent computes them here with OpenCV for many frames per call.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

STATS_CHUNK_BYTES = 256 * 1024  # frames measured at once: their float copies stay in cache


class InputStatistics:
    """``protocols.features.input_stats`` of a batch of same-size BGR frames, computed with
    OpenCV on the frames stacked into one tall image (the Laplacian's rows across two
    frames fall in the borders the definition leaves out), sums in float64, into buffers
    kept between batches: the same numbers to float32 rounding, pinned by a unit test.
    """

    def __init__(self) -> None:
        self._size: tuple[int, int, int] = (0, 0, 0)  # frames, height, width allocated

    def _allocate(self, n: int, h: int, w: int) -> None:
        self._luma = np.empty((n * h, w), np.float32)
        self._work = np.empty((n * h, w), np.float32)  # deviations^2, |Laplacian|, sat.
        self._planes = [np.empty((n * h, w), np.uint8) for _ in range(3)]
        self._hi = np.empty((n * h, w), np.uint8)
        self._lo = np.empty((n * h, w), np.uint8)
        self._size = (n, h, w)

    def __call__(self, frames: U8, out: F32) -> None:
        """Write each frame's brightness, contrast, sharpness, saturation
        (``INPUT_STAT_NAMES`` order) into the rows of ``out`` (n x 4)."""
        step = max(1, STATS_CHUNK_BYTES // max(1, frames[0].nbytes)) if len(frames) else 1
        for i in range(0, len(frames), step):
            self._measure(frames[i:i + step], out[i:i + step])

    def _measure(self, frames: U8, out: F32) -> None:
        n, h, w = frames.shape[:3]
        if (h, w) != self._size[1:] or n > self._size[0]:
            self._allocate(n, h, w)
        rows, pixels = n * h, h * w
        luma, work = self._luma[:rows], self._work[:rows]
        b, g, r = (p[:rows] for p in self._planes)
        hi, lo = self._hi[:rows], self._lo[:rows]

        def sums(a: F32) -> F64:  # per frame, float64
            return np.asarray(cv2.reduce(a.reshape(n, pixels), 1, cv2.REDUCE_SUM,
                                         dtype=cv2.CV_64F)[:, 0], np.float64)

        cv2.split(frames.reshape(rows, w, 3), [b, g, r])
        # luma = 0.299 R + 0.587 G + 0.114 B, in float32 straight from the uint8 planes
        # (a float32 copy of the frames first took as long as the rest).
        cv2.addWeighted(r, 0.299 / 0.886, g, 0.587 / 0.886, 0.0, dst=luma, dtype=cv2.CV_32F)
        cv2.accumulateWeighted(b, luma, 0.114)  # luma = 0.886 luma + 0.114 B
        mean = sums(luma) / pixels
        # Two passes, like numpy's std: exact when flat. A float32 mean: subtracting a
        # float64 one casts every pixel, three times as long.
        centred = work.reshape(n, pixels)
        np.subtract(luma.reshape(n, pixels), mean.astype(np.float32)[:, None], out=centred)
        cv2.multiply(work, work, dst=work)
        var = sums(work) / pixels
        cv2.Laplacian(luma, cv2.CV_32F, dst=work, ksize=1)  # 4-neighbour kernel
        np.abs(work, out=work)
        edge = work.reshape(n, h, w)
        edge[:, 0], edge[:, -1], edge[:, :, 0], edge[:, :, -1] = 0, 0, 0, 0
        sharpness = np.log1p(sums(work) / ((h - 2) * (w - 2)))
        cv2.max(b, g, dst=hi)
        cv2.max(hi, r, dst=hi)
        cv2.min(b, g, dst=lo)
        cv2.min(lo, r, dst=lo)
        cv2.subtract(hi, lo, dst=lo)
        # A scalar operand (OpenCV takes it; the stubs do not): numpy's maximum with a
        # scalar takes 6 times as long.
        cv2.max(hi, 1, dst=hi)  # type: ignore[call-overload]
        cv2.divide(lo, hi, dst=work, dtype=cv2.CV_32F)  # (max - min) / max(max, 1)
        out[:, 0], out[:, 1], out[:, 2] = mean, np.sqrt(var), sharpness
        out[:, 3] = sums(work) / pixels
