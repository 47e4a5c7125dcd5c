"""Camera capture: one thread per camera keeps only the newest frame.

Capture never waits for inference. A frame that is replaced before inference
takes it is counted as *skipped* when inference did not want a frame yet
(sampling below the camera's fps, on purpose) and as *lost* when inference
wanted one but was too busy to take it in time.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from protocols.urls import redact_url

from .camera_config import CameraConfig
from .checks import source_problem

log = logging.getLogger(__name__)

# Unreadable frames in a row that a file may hold before the run counts as its end.
_MAX_BAD_FILE_FRAMES = 64
# _read_until_failure's answer when a looped file was replaced: reopen it, no backoff.
_REOPEN = "file replaced"

CameraState = Literal["up", "reconnecting", "down"]
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Frame:
    image: Image  # BGR, HxWx3; hand it back with FrameSlot.recycle when done
    captured_at: float  # time.monotonic() when read() returned
    index: int  # how many frames this camera captured before this one


@dataclass(frozen=True)
class CaptureCounters:
    """Cumulative counts since the camera started; windows take differences."""

    captured: int = 0
    skipped: int = 0
    lost: int = 0
    reconnects: int = 0
    stalls: int = 0

    def __sub__(self, other: CaptureCounters) -> CaptureCounters:
        return CaptureCounters(
            self.captured - other.captured,
            self.skipped - other.skipped,
            self.lost - other.lost,
            self.reconnects - other.reconnects,
            self.stalls - other.stalls,
        )


class FrameSlot:
    """A one-frame mailbox: ``put`` replaces, ``take`` empties. Buffers are recycled."""

    def __init__(self, wake: threading.Event | None = None) -> None:
        self._lock = threading.Lock()
        self._wake = wake  # set when a frame arrives that inference is waiting for
        self._frame: Frame | None = None
        self._wanted = False
        self._spare: Image | None = None
        self.captured = 0
        self.skipped = 0
        self.lost = 0

    def put(self, image: Image, captured_at: float) -> None:
        with self._lock:
            old = self._frame
            if old is not None:
                if self._wanted:
                    self.lost += 1
                else:
                    self.skipped += 1
                self._spare = old.image
            self._frame = Frame(image, captured_at, self.captured)
            self.captured += 1
            if self._wanted and self._wake is not None:
                self._wake.set()

    def count_lost(self, n: int) -> None:
        """Frames the source delivered but that could not be decoded."""
        with self._lock:
            self.lost += n

    def want(self) -> None:
        """Inference is ready for a frame from now on (frames replaced from now on are lost)."""
        with self._lock:
            self._wanted = True

    def take(self) -> Frame | None:
        """The newest frame not yet taken, or None; never blocks."""
        with self._lock:
            frame, self._frame = self._frame, None
            if frame is not None:
                self._wanted = False
            return frame

    def recycle(self, image: Image) -> None:
        """Give a taken frame's buffer back so capture can read the next frame into it."""
        with self._lock:
            self._spare = image

    def spare(self) -> Image | None:
        with self._lock:
            image, self._spare = self._spare, None
            return image


class CameraSource:
    """Reads one camera in its own thread; reconnects with backoff; tracks its state.

    The read watchdog (:meth:`check_stall`, called by the inference loop) catches an
    ``open``/``read()`` that blocks for over ``stall_seconds``: that capture is abandoned
    in its thread (it exits, releasing its handle, whenever the call returns) and a new
    capture thread opens the source again. Each capture thread has a generation; a
    thread whose generation is no longer current never touches the slot or the state.
    """

    MAX_ABANDONED = 4  # stuck threads kept before the watchdog stops spawning new ones

    def __init__(
        self,
        config: CameraConfig,
        on_state: Callable[[CameraSource], None] | None = None,
        wake: threading.Event | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.config = config
        self.slot = FrameSlot(wake)
        self._on_state = on_state
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._abandoned: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.state: CameraState = "reconnecting"
        self.since = datetime.now(UTC)
        self.detail: str | None = "starting"
        self._generation = 0
        self._attempt = 0  # consecutive failures, for the backoff; reset on a good frame
        self._reconnects = 0
        self._stalls = 0
        self._blocked_since: float | None = None
        self._blocked_in = ""
        self.source_fps = 0.0
        self._file_id: tuple[int, int, int] | None = None  # of the file when it was opened
        self._open_failure: str | None = None  # the last reason logged, so retries stay quiet

    @property
    def camera_id(self) -> str:
        return self.config.camera_id

    def start(self) -> None:
        self._spawn(delay=0.0)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def counters(self) -> CaptureCounters:
        slot = self.slot
        with slot._lock:
            captured, skipped, lost = slot.captured, slot.skipped, slot.lost
        with self._lock:
            return CaptureCounters(captured, skipped, lost, self._reconnects, self._stalls)

    @property
    def abandoned_threads(self) -> int:
        """Captures abandoned by the watchdog whose blocking call has not returned yet."""
        with self._lock:
            self._abandoned = [t for t in self._abandoned if t.is_alive()]
            return len(self._abandoned)

    def check_stall(self, now: float) -> bool:
        """Watchdog: a call blocked over ``stall_seconds`` is a stall; abandon it, reopen."""
        with self._lock:
            started = self._blocked_since
            limit = (2 * self.config.open_timeout_seconds if self._blocked_in == "open"
                     else self.config.stall_seconds)
            if started is None or now - started < limit:
                return False
            self._blocked_since = None  # this generation is counted once
            self._stalls += 1
            self._reconnects += 1
            where = self._blocked_in
            stuck = self._thread
            self._abandoned = [t for t in self._abandoned if t.is_alive()]
            if stuck is not None:
                self._abandoned.append(stuck)
            too_many = len(self._abandoned) > self.MAX_ABANDONED
            self._generation += 1  # the stuck thread is no longer current
        log.warning("camera %s: %s blocked for over %.1fs; abandoning it and reopening",
                    self.camera_id, where, limit, extra={"camera_id": self.camera_id})
        self._set_state("reconnecting", f"{where} blocked for over {limit:g}s")
        # The first stall reopens at once; stalls in a row back off like failures do.
        delay = self._next_delay() if self._attempt else 0.0
        self._attempt = max(self._attempt, 1)
        self._spawn(delay=delay, wait_for_abandoned=too_many)
        return True

    # -- the capture threads ---------------------------------------------------------------
    def _spawn(self, delay: float, wait_for_abandoned: bool = False) -> None:
        with self._lock:
            self._generation += 1
            gen = self._generation
            self._blocked_since = None
        thread = threading.Thread(target=self._run, args=(gen, delay, wait_for_abandoned),
                                  name=f"capture-{self.camera_id}-{gen}", daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()

    def _current(self, gen: int) -> bool:
        return gen == self._generation and not self._stop.is_set()

    def _next_delay(self) -> float:
        delay = min(self._backoff_max, self._backoff_initial * 2.0 ** min(self._attempt, 30))
        self._attempt += 1
        return float(delay * random.uniform(0.5, 1.5))

    def _blocking(self, gen: int, what: str | None) -> None:
        """Mark the start (``what``) or end (None) of a call the watchdog should time."""
        with self._lock:
            if gen != self._generation:
                return
            self._blocked_since = time.monotonic() if what else None
            self._blocked_in = what or ""

    def _set_state(self, state: CameraState, detail: str | None = None,
                   gen: int | None = None) -> None:
        with self._lock:
            if gen is not None and gen != self._generation:
                return  # an abandoned capture speaks no more
            if state == self.state and detail == self.detail:
                return
            changed = state != self.state
            self.state, self.detail = state, detail
            if changed:
                self.since = datetime.now(UTC)
        if changed:
            log.info("camera %s is %s", self.camera_id, state,
                     extra={"camera_id": self.camera_id, "detail": detail})
            if self._on_state is not None:
                self._on_state(self)

    def _open(self, gen: int) -> cv2.VideoCapture | None:
        kind = self.config.kind
        self._blocking(gen, "open")
        try:
            if kind == "device":
                cap = cv2.VideoCapture(int(self.config.source))
            elif kind == "url":
                # FFmpeg's own timeouts back the watchdog up; for reads it fires first.
                cap = cv2.VideoCapture(self.config.source, cv2.CAP_FFMPEG, [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.config.open_timeout_seconds * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.config.stall_seconds * 3000)])
            else:
                cap = cv2.VideoCapture(self.config.source)
        finally:
            self._blocking(gen, None)
        if not cap.isOpened():
            cap.release()
            return None
        if kind == "file":
            self._file_id = self._identity()
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.source_fps = fps if 0 < fps < 1000 else 0.0
        return cap

    def _why_not_open(self) -> str:
        """The reason a source did not open, logged once per reason (the state's detail
        alone would reach only `devices show`)."""
        cam = self.config
        reason = source_problem(cam, probe_seconds=min(2.0, cam.open_timeout_seconds)) or (
            f"cannot open {cam.kind} source {redact_url(cam.source)}: check the path or "
            "stream name, the credentials in the URL and the codec")
        if reason != self._open_failure:
            self._open_failure = reason
            log.warning("camera %s: %s; retrying with backoff", self.camera_id, reason,
                        extra={"camera_id": self.camera_id})
        return reason

    def _identity(self) -> tuple[int, int, int] | None:
        """(inode, size, mtime) of the source file; None when it cannot be read."""
        try:
            st = os.stat(self.config.source)
        except OSError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _run(self, gen: int, delay: float, wait_for_abandoned: bool) -> None:
        if wait_for_abandoned:
            while self._current(gen) and self.abandoned_threads > self.MAX_ABANDONED:
                self._stop.wait(min(1.0, self.config.stall_seconds))
        if delay and self._stop.wait(delay):
            return
        is_file = self.config.kind == "file"
        while self._current(gen):
            cap = self._open(gen)
            if not self._current(gen):  # abandoned while opening
                if cap is not None:
                    cap.release()
                return
            reason: str | None
            if cap is None:
                reason = self._why_not_open()
            else:
                before = self.slot.captured
                try:
                    reason = self._read_until_failure(cap, is_file, gen)
                finally:
                    cap.release()
                if reason is None:  # a finished file, stop requested, or abandoned
                    return
                if reason == _REOPEN:
                    log.info("camera %s: looped file was replaced; playing the new one",
                             self.camera_id, extra={"camera_id": self.camera_id})
                    continue
                if self.slot.captured > before:  # backoff resets on the first good frame
                    self._attempt = 0
            if not self._current(gen):
                return
            self._set_state("reconnecting", reason, gen)
            with self._lock:
                self._reconnects += 1
            self._stop.wait(self._next_delay())

    def _read_until_failure(self, cap: cv2.VideoCapture, is_file: bool, gen: int) -> str | None:
        """Read frames until the source fails (return why) or ends/stops (return None)."""
        paced = is_file and self.config.realtime and self.source_fps > 0
        period = 1.0 / self.source_fps if paced else 0.0
        next_at = time.monotonic()
        rewound = False
        bad = 0  # consecutive unreadable frames in a file
        while self._current(gen):
            if period and not bad:  # unreadable frames are stepped over without waiting
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return None
                next_at = max(next_at + period, time.monotonic() - period)
            self._blocking(gen, "read()")
            ok, image = cap.read(self.slot.spare())
            now = time.monotonic()
            self._blocking(gen, None)
            if not self._current(gen):
                return None
            if ok and image is not None:
                self._open_failure = None
                self.slot.put(image.astype(np.uint8, copy=False), now)
                self._set_state("up", None, gen)
                rewound = False
                if bad:  # the unreadable run ended in a good frame: those frames were lost
                    self.slot.count_lost(bad)
                    bad = 0
                continue
            if not is_file:
                return "read() failed"
            # A frame that fails to decode mid-file still consumes its packet, so the next
            # read() moves on; only a long run of failures is taken as the end of the file.
            bad += 1
            if bad <= _MAX_BAD_FILE_FRAMES:
                continue
            bad = 0
            if self.slot.captured == 0:
                return "file has no readable frames"
            if not self.config.loop:
                self._set_state("down", "end of file", gen)
                return None
            if rewound:
                return "cannot rewind the file"
            # A looped file replaced on disk (an operator swaps the clip with a rename) is
            # reopened at its end instead of rewound: no restart needed.
            if self._identity() not in (None, self._file_id):
                return _REOPEN
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            rewound = True
        return None
