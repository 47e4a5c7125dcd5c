"""Moving regions: a background model on a small copy of each frame (as Frigate does).

Per frame: the frame shrunk to ``region_analysis_width`` (halvings, then one area resize:
each halving is OpenCV's fast 2x area average, where one area resize of a 640x480
frame to a quarter cost twice as long), the background subtractor (OpenCV MOG2
or KNN, with shadow detection: shadow pixels are marked 127 and dropped by the
threshold), a morphological open (speckle) and a dilation (join an animal's parts), the
outer contours' bounding boxes, then boxes merged within ``region_merge_distance``, a
region that holds several animals' bodies split into one per body (``split``; parts of
one animal already tracked joined again), and
boxes kept within ``region_min_size``..``region_max_size``. More than half the picture moving
at once is a change of light (a cloud, the IR lamp): no regions until the model has
learnt it. Every image buffer is kept between frames.

The costs (``bench/agent_pipeline.py``, a 640x480 frame, one core): the background model
takes 1.1 ms at 320 px and 0.26 ms at 160 px, hence 160 px by default; contours take a
tenth of what connected components with statistics took on the same sparse mask (0.04
against 0.5 ms at 320 px), and give the same boxes once merged (a part inside another's
hole lies in its box).

In colour, not grey: the subtractors call a pixel a shadow when it is darker than the
background *with the same chromaticity*; on grey every darker object passes that test
(a red cat on a lawn was a "shadow"). Colour costs about 10 % more at 320 px.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from protocols.messages import BACKGROUND_COLS, BACKGROUND_ROWS, EDGE_COLS, EDGE_ROWS

from ..camera_config import CameraConfig
from .boxes import Box, area, merge_near
from .split import rejoin, split_blob

U8 = npt.NDArray[np.uint8]
_MAX_PARTS = 64  # parts merged per frame, largest first: noise beyond is dropped
_LIGHT_CHANGE = 0.5  # a moving fraction of the picture above this is light, not objects
_THUMB = (64, 48)  # colour thumbnail for the saturation of the frame
# Canny's gradient thresholds on the small grey copy: the scene's lasting outlines (paths,
# fences, trees), not the lawn's texture.
_EDGE_LOW, _EDGE_HIGH = 50, 150
# A rain streak on the small copy: narrower than 5 px and at least 5 px tall. Shorter
# openings took in a dark frame's noise; narrower ones lost streaks the wind tilts.
_STREAK_WIDTH, _STREAK_LENGTH = 5, 5
# MOG2 learns at 1 / history a frame and calls a colour background once the old one's
# weight falls below its background ratio (0.9): after ln(1 / 0.9) = 0.105 x history
# frames. KNN, whose history counts samples, takes about as long.
_ABSORB_SHARE = 0.105
_DILATIONS = 2  # 3x3 dilations that join an animal's parts before the contours


class MotionRegions:
    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self._size: tuple[int, int] = (0, 0)
        self._small: U8 = np.empty((0, 0, 3), np.uint8)
        self._mask: U8 = np.empty((0, 0), np.uint8)
        self._halves: list[U8] = []  # the frame halved, on the way to the small copy
        self._opens = 1
        self._thumb: U8 = np.empty((_THUMB[1], _THUMB[0], 3), np.uint8)
        self._planes: list[U8] = [np.empty(_THUMB[::-1], np.uint8) for _ in range(3)]
        self._hi: U8 = np.empty(_THUMB[::-1], np.uint8)
        self._lo: U8 = np.empty(_THUMB[::-1], np.uint8)
        self._sat = np.empty(_THUMB[::-1], np.float32)
        self._edges: U8 = np.empty((0, 0), np.uint8)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._thin = np.ones((1, _STREAK_WIDTH), np.uint8)
        self._tall = np.ones((_STREAK_LENGTH, 1), np.uint8)
        self._grey: U8 = np.empty((0, 0), np.uint8)  # the last frame's small copy, grey
        self._mean: U8 = np.empty((0, 0), np.uint8)  # the frames' mean (background_edges)
        self._lines: U8 = np.empty((0, 0), np.uint8)
        self._subtractor: cv2.BackgroundSubtractor | None = None
        self._sum = np.empty((0, 0), np.float32)  # the grey frames since background_edges
        self._summed = 0
        self.moving_fraction = 0.0

    def _allocate(self, height: int, width: int) -> None:
        cam = self.camera
        w = min(cam.region_analysis_width, width)
        h = max(1, round(height * w / width))
        self._size = (height, width)
        self._small = np.empty((h, w, 3), np.uint8)
        self._mask = np.empty((h, w), np.uint8)
        self._grey = np.empty((h, w), np.uint8)
        self._mean = np.empty((h, w), np.uint8)
        self._edges = np.empty((h, w), np.uint8)
        self._lines = np.empty((h, w), np.uint8)
        self._sum = np.zeros((h, w), np.float32)
        self._summed = 0
        # Halvings while the rest stays a whole factor: OpenCV's area resize averages
        # exact blocks only at whole factors (by 1.5 it is off by up to 12 levels).
        self._halves = []
        while width // 2 > w and width % (2 * w) == 0 and height % (2 * h) == 0:
            width, height = width // 2, height // 2
            self._halves.append(np.empty((height, width, 3), np.uint8))
        # One opening per 160 px: a moving shadow's rim (JPEG edges) and speckle go, an
        # animal 3 % of the frame wide (region_min_size: 5 px at 160 px) stays.
        self._opens = max(1, round(w / 160))
        history = max(2, round(cam.region_absorb_seconds * cam.sample_fps / _ABSORB_SHARE))
        if cam.region_subtractor == "knn":  # its distance is not in variances: 25 x is
            # OpenCV's default pairing (400 for KNN where MOG2 has 16)
            self._subtractor = cv2.createBackgroundSubtractorKNN(
                history, 25.0 * cam.region_sensitivity, detectShadows=True)
        else:
            self._subtractor = cv2.createBackgroundSubtractorMOG2(
                history, cam.region_sensitivity, detectShadows=True)

    def __call__(self, bgr: U8, known: Sequence[Box] = ()) -> list[Box]:
        """The moving regions of ``bgr`` (boxes in its pixels), largest first; ``known``:
        where the animals already tracked should be in this frame (a region split into
        bodies keeps the parts of one of them together)."""
        height, width = bgr.shape[:2]
        if self._size != (height, width):
            self._allocate(height, width)  # a new picture size: a new background model
        assert self._subtractor is not None
        small, mask = self._small, self._mask
        for half in self._halves:
            cv2.resize(bgr, half.shape[1::-1], dst=half, interpolation=cv2.INTER_AREA)
            bgr = half
        cv2.resize(bgr, mask.shape[::-1], dst=small, interpolation=cv2.INTER_AREA)
        self._subtractor.apply(small, mask)
        cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        cv2.accumulate(self._grey, self._sum)
        self._summed += 1
        cv2.threshold(mask, 200, 255, cv2.THRESH_BINARY, dst=mask)  # shadows (127) out
        cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel, dst=mask, iterations=self._opens)
        self.moving_fraction = cv2.countNonZero(mask) / mask.size
        if self.moving_fraction > _LIGHT_CHANGE or self.moving_fraction == 0.0:
            return []
        cv2.dilate(mask, self._kernel, dst=mask, iterations=_DILATIONS)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        parts = [cv2.boundingRect(c) for c in contours]
        return self._boxes(parts, width / small.shape[1], height / small.shape[0], known)

    def _boxes(self, parts: list[Sequence[int]], sx: float, sy: float,
               known: Sequence[Box]) -> list[Box]:
        cam, (height, width) = self.camera, self._size
        parts.sort(key=lambda r: r[2] * r[3], reverse=True)
        merge = cam.region_merge_distance * width
        merged = merge_near([(x * sx, y * sy, (x + w) * sx, (y + h) * sy)
                             for x, y, w, h in parts[:_MAX_PARTS]], merge)
        high_w, high_h = cam.region_max_size * width, cam.region_max_size * height
        # The smallest animal (region_min_size) as a half-width on the dilated mask.
        radius = cam.region_min_size * self._mask.shape[1] / 2 + _DILATIONS
        boxes: list[Box] = []
        for b in merged:
            if b[2] - b[0] > high_w or b[3] - b[1] > high_h:
                continue
            split = [(x0 * sx, y0 * sy, x1 * sx, y1 * sy) for x0, y0, x1, y1 in split_blob(
                self._mask, (round(b[0] / sx), round(b[1] / sy), round(b[2] / sx),
                             round(b[3] / sy)), radius, cam.region_split_neck)]
            boxes += rejoin(split, known, width, height) if len(split) > 1 else split
        low = cam.region_min_size * width
        kept = [b for b in boxes if max(b[2] - b[0], b[3] - b[1]) >= low]
        kept.sort(key=area, reverse=True)
        return kept

    def light(self) -> tuple[float, float]:
        """The last frame's brightness (mean luma) and saturation (mean ``(max - min) /
        max``, on a nearest-pixel thumbnail of the small copy): see ``condition``."""
        cv2.resize(self._small, _THUMB, dst=self._thumb, interpolation=cv2.INTER_NEAREST)
        b, g, r = cv2.split(self._thumb, self._planes)
        cv2.max(b, g, dst=self._hi)
        cv2.max(self._hi, r, dst=self._hi)
        cv2.min(b, g, dst=self._lo)
        cv2.min(self._lo, r, dst=self._lo)
        cv2.subtract(self._hi, self._lo, dst=self._lo)
        cv2.max(self._hi, 1, dst=self._hi)  # type: ignore[call-overload]
        cv2.divide(self._lo, self._hi, dst=self._sat, dtype=cv2.CV_32F)
        blue, green, red, _ = cv2.mean(self._small)
        return 0.299 * red + 0.587 * green + 0.114 * blue, float(cv2.mean(self._sat)[0])

    def edge_layout(self) -> list[int]:
        """Where the last frame's edges lie: per cell of the ``EDGE_COLS`` x ``EDGE_ROWS``
        grid, its share of the edge pixels in hundredths (all 0 in a frame with none).
        Shares, not counts, so light that dims every edge (dusk, haze) leaves the layout as
        it is, while a camera turned or zoomed moves it. About 0.1 ms at 160 px."""
        if self._small.size == 0:
            return [0] * (EDGE_COLS * EDGE_ROWS)
        cv2.Canny(self._grey, _EDGE_LOW, _EDGE_HIGH, edges=self._edges)
        cells = _cell_counts(self._edges, EDGE_COLS, EDGE_ROWS)
        total = sum(cells)
        if total <= 0:
            return [0] * (EDGE_COLS * EDGE_ROWS)
        return [round(100 * c / total) for c in cells]

    def background_edges(self) -> list[int]:
        """Where the edges of the mean of the frames since the last call lie: edge pixels
        per cell of the ``BACKGROUND_COLS`` x ``BACKGROUND_ROWS`` grid (all 0 with no frame
        in between); the mean starts again. Called once a window.

        The frame's own edges (``edge_layout``) include the animals passing, which move
        them from minute to minute about as much as a turned camera does. In a minute's
        mean an animal walking by is a faint smear and the scene's outlines stay sharp, so
        a moved or zoomed view changes these cells and a busy minute does not. The mean,
        not the background model's image: that one blends the old view into the new for
        over a minute after a move (MOG2 learns at 1 / history a frame)."""
        cells = BACKGROUND_COLS * BACKGROUND_ROWS
        if self._summed == 0:
            return [0] * cells
        cv2.convertScaleAbs(self._sum, self._mean, 1.0 / self._summed)
        self._sum.fill(0.0)
        self._summed = 0
        cv2.Canny(self._mean, _EDGE_LOW, _EDGE_HIGH, edges=self._edges)
        return _cell_counts(self._edges, BACKGROUND_COLS, BACKGROUND_ROWS)

    def streaks(self) -> float:
        """The last frame's rain streak energy: the mean, in grey levels, of its thin
        bright lines (a top-hat across a few pixels) that are also tall (an opening
        along the columns), on the small copy's grey: see ``condition``. Falling rain
        draws such lines; a scene's edges are wider or shorter, and blur smears them."""
        cv2.morphologyEx(self._grey, cv2.MORPH_TOPHAT, self._thin, dst=self._lines)
        cv2.morphologyEx(self._lines, cv2.MORPH_OPEN, self._tall, dst=self._lines)
        return float(cv2.mean(self._lines)[0])


def _cell_counts(mask: U8, cols: int, rows: int) -> list[int]:
    """Non-zero pixels per cell of a ``cols`` x ``rows`` grid over ``mask``, row-major."""
    h, w = mask.shape
    ys = [r * h // rows for r in range(rows + 1)]
    xs = [c * w // cols for c in range(cols + 1)]
    return [cv2.countNonZero(mask[ys[r]:ys[r + 1], xs[c]:xs[c + 1]])
            for r in range(rows) for c in range(cols)]
