"""Writing and reading clips as an agent's camera does: MJPG ``.avi`` through OpenCV."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ._draw import U8

EPOCH = dt.datetime(2024, 6, 1, 7, 0, 0)  # the burnt-in clock of every clip starts here


def open_writer(out_path: Path, fps: float, w: int, h: int) -> cv2.VideoWriter:
    """An MJPG writer at ``out_path`` (its folder is created); a clear error if it fails."""
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RuntimeError(f"cannot create the folder {out_path.parent} ({exc.strerror}); "
                           "write the clip to a writable folder") from None
    writer = cv2.VideoWriter(str(out_path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter could not open {out_path} for MJPG at {w}x{h}; "
                           "use an .avi path in a writable folder")
    return writer


def _text_origin(height: int) -> tuple[float, tuple[int, int]]:
    return height / 400, (6, int(height / 22) + 6)


def burn_in_box(height: int, text: str) -> tuple[int, int, int, int]:
    """(x, y, w, h) that ``burn_in`` paints for ``text`` on a frame ``height`` pixels tall."""
    scale, (x, y) = _text_origin(height)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return x - 2, max(0, y - h - 2), w + 4, h + base + 4  # outline and anti-aliasing


def burn_in(frame: U8, text: str) -> None:
    """CCTV-style burnt-in text: white with a dark outline, top-left (in place)."""
    scale, org = _text_origin(frame.shape[0])
    for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1)):  # outline by offsets: same glyph widths
        cv2.putText(frame, text, (org[0] + dx, org[1] + dy), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)


def stamp_text(camera: str, start: dt.datetime, seconds: float) -> str:
    return f"{camera}  {start + dt.timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S}"


def read_frames(path: Path) -> Iterator[U8]:
    """Decode every frame of a clip with OpenCV, as the agent's capture does."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"OpenCV cannot open {path} as a video")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield np.asarray(frame, np.uint8)
    finally:
        capture.release()
