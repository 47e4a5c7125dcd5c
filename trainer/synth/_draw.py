"""Array types and small drawing helpers shared by the synthetic-data modules."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
FA = NDArray[np.floating[Any]]


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> None:
    """A ValueError naming the allowed values when ``value`` is not one of them."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> F32:
    """Low-frequency noise in about [-1, 1]: a coarse random grid upsampled (cheap)."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), np.float32)


def pt(x: float, y: float) -> tuple[int, int]:
    return round(x), round(y)


def col(c: FA | tuple[float, ...]) -> tuple[int, int, int]:
    return int(c[0]), int(c[1]), int(c[2])


def check_bgr(img: np.ndarray, what: str = "img") -> None:
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"{what} must be an HxWx3 uint8 BGR array")


def matte(mask: U8) -> F32:
    """A 0-255 mask as a float32 matte in [0, 1]."""
    out: F32 = np.asarray(mask, np.float32) / np.float32(255)
    return out
