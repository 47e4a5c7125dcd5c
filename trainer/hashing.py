"""Perceptual hashing of images for the near-duplicate check (numpy/cv2 only)."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt


def dhash(gray: npt.NDArray[np.uint8]) -> int:
    """64-bit difference hash: 9x8 area-resized grey image, bit set where left > right."""
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, :-1] > small[:, 1:]).flatten()
    return int(np.packbits(bits, bitorder="little").view("<u8")[0])


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two 64-bit hashes."""
    return (a ^ b).bit_count()


__all__ = ["dhash", "hamming"]
