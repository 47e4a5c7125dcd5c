"""Animal cut-outs from photos: GrabCut from a central rectangle, a feathered matte.

A photo pasted as a rectangle would carry its own background (a sofa in the middle of
the grass) and teach a detector to find rectangles. GrabCut (OpenCV) separates the
animal from its background given a rectangle that holds it; our photos are framed by
people, so the animal fills the centre and a rectangle with a small margin holds it. A
small core at the centre is marked as surely the animal: without it GrabCut collapses to
a few pixels on about one photo in four (its colour models latch onto the background).
GrabCut takes a few hundred milliseconds per photo, so results are cached on disk by the
photo's sha256. When the result is implausible (almost nothing or almost everything
kept, or the centre of the photo not kept) the matte falls back to a soft ellipse in the
rectangle, and the cut-out says which method made it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ._draw import F32, U8
from ._draw import matte as to_matte

Method = Literal["grabcut", "ellipse"]
METHODS: tuple[Method, ...] = ("grabcut", "ellipse")
MARGIN = 0.06  # the rectangle leaves this share of the photo's width/height on each side
_WORK_SIDE = 200  # GrabCut runs on the photo shrunk to this long side: cost ~ pixels
_ITERATIONS = 4
_CORE = 0.1  # half-axes of the sure-animal ellipse, as shares of the rectangle's sides
_KEEP = (0.15, 0.95)  # plausible share of the rectangle that the animal covers
_VERSION = 1  # part of the cache key: bump when the cut-out recipe changes


@dataclass(frozen=True)
class Cutout:
    bgr: U8
    alpha: F32  # same height and width as bgr, in [0, 1]
    method: Method


def central_rect(height: int, width: int, margin: float = MARGIN) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the rectangle GrabCut starts from."""
    mx, my = round(width * margin), round(height * margin)
    return mx, my, width - 2 * mx, height - 2 * my


def _largest_filled(fg: U8) -> U8:
    """The largest connected blob of ``fg``, its holes filled (a dark patch is still fur)."""
    contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros_like(fg)
    if contours:
        biggest = max(contours, key=cv2.contourArea)
        cv2.drawContours(out, [biggest], -1, 1, cv2.FILLED)
    return out


def grabcut_matte(photo: U8, work_side: int = _WORK_SIDE, iterations: int = _ITERATIONS
                  ) -> F32 | None:
    """A feathered matte of the animal in ``photo``, or None when GrabCut's is implausible.
    GrabCut runs on the photo shrunk to ``work_side`` pixels on its long side."""
    h, w = photo.shape[:2]
    f = min(1.0, work_side / max(h, w))
    small = cv2.resize(photo, (max(8, round(w * f)), max(8, round(h * f))),
                       interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    x, y, rw, rh = central_rect(sh, sw)
    mask = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    mask[y:y + rh, x:x + rw] = cv2.GC_PR_FGD
    core = (max(1, round(rw * _CORE)), max(1, round(rh * _CORE)))
    cv2.ellipse(mask, (sw // 2, sh // 2), core, 0, 0, 360, cv2.GC_FGD, -1)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut seeds its colour models from OpenCV's global RNG
    try:
        cv2.grabCut(small, mask, (0, 0, 0, 0), bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return None
    fg = _largest_filled(((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8))
    share = fg.sum() / (rw * rh)
    if not _KEEP[0] <= share <= _KEEP[1] or not fg[sh // 2, sw // 2]:
        return None
    up = cv2.resize(fg.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.asarray(cv2.GaussianBlur(up, (0, 0), max(1.0, 0.006 * max(h, w))), np.float32)


def ellipse_matte(height: int, width: int) -> F32:
    """A soft ellipse filling the central rectangle: the fallback when GrabCut fails."""
    x, y, w, h = central_rect(height, width)
    mask = np.zeros((height, width), np.float32)
    cv2.ellipse(mask, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, 1.0, -1)
    return np.asarray(cv2.GaussianBlur(mask, (0, 0), 0.03 * min(height, width)), np.float32)


def cut_out(photo: U8, work_side: int = _WORK_SIDE, iterations: int = _ITERATIONS) -> Cutout:
    """The animal of ``photo`` with its matte (GrabCut, else the ellipse fallback)."""
    matte = grabcut_matte(photo, work_side, iterations)
    method: Method = "grabcut"
    if matte is None:
        matte, method = ellipse_matte(*photo.shape[:2]), "ellipse"
    # 8-bit levels, as the cache stores them: a cached and a fresh cut-out are identical.
    return Cutout(photo, to_matte(np.round(matte * 255).astype(np.uint8)), method)


class CutoutCache:
    """Cut-outs on disk as BGRA PNGs named by photo sha256 and method; None: no cache.

    ``work_side`` and ``iterations`` other than the clips' (200 px, 4) make a coarser
    cut-out at a tenth of the cost (128 px, 2: 0.045 s against 0.24 s of CPU a photo),
    which a trainer cutting out every training photo uses; its files are named apart."""

    def __init__(self, folder: Path | None, work_side: int = _WORK_SIDE,
                 iterations: int = _ITERATIONS) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.work = (work_side, iterations)
        default = self.work == (_WORK_SIDE, _ITERATIONS)
        self._version = f"v{_VERSION}" if default else f"v{_VERSION}-{work_side}x{iterations}"

    def _find(self, sha256: str) -> tuple[Path, Method] | None:
        if self.folder is None:
            return None
        for method in METHODS:
            path = self.folder / f"{sha256}.{self._version}.{method}.png"
            if path.is_file():
                return path, method
        return None

    def get(self, photo_path: Path, sha256: str) -> Cutout:
        """The cut-out of the photo at ``photo_path`` (whose content hash is ``sha256``)."""
        found = self._find(sha256)
        if found is not None:
            read = cv2.imread(str(found[0]), cv2.IMREAD_UNCHANGED)
            bgra = None if read is None else np.asarray(read, np.uint8)
            if bgra is not None and bgra.ndim == 3 and bgra.shape[2] == 4:
                return Cutout(np.ascontiguousarray(bgra[..., :3]), to_matte(bgra[..., 3]),
                              found[1])  # an unreadable cache file is made again below
        decoded = cv2.imread(str(photo_path), cv2.IMREAD_COLOR)
        if decoded is None:
            raise ValueError(f"cannot decode the photo {photo_path}")
        cut = cut_out(np.asarray(decoded, np.uint8), *self.work)
        if self.folder is not None:
            self._store(sha256, cut)
        return cut

    def _store(self, sha256: str, cut: Cutout) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        a8 = np.round(cut.alpha * 255).astype(np.uint8)
        ok, buf = cv2.imencode(".png", np.dstack([cut.bgr, a8]))
        if not ok:
            raise RuntimeError("OpenCV could not PNG-encode a cut-out")
        final = self.folder / f"{sha256}.{self._version}.{cut.method}.png"
        fd, tmp = tempfile.mkstemp(prefix=".cutout.", dir=self.folder)
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, final)  # concurrent renders of one photo write the same bytes
