"""What samples and snapshots share: a small queue drained by one thread that POSTs JPEGs
to the control plane, so the inference thread never waits on the network."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from protocols.api_errors import retry_after_seconds

log = logging.getLogger(__name__)
T = TypeVar("T")


def jpeg_b64(image: np.ndarray, max_side: int, quality: int) -> tuple[str, int, int]:
    """The frame as base64 JPEG, shrunk to ``max_side``; with its width and height."""
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        w, h = max(1, int(w * scale)), max(1, int(h * scale))
        image = np.asarray(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA), np.uint8)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return base64.b64encode(np.asarray(jpeg).tobytes()).decode(), w, h


class Throttled(OSError):
    """The control plane refused an upload for its rate; ``wait`` s is what it asked."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.wait = wait


def post_json(base_url: str, path: str, token: str, body: dict[str, Any],
              timeout: float) -> None:
    """POST ``body`` with the device's token; OSError naming the answer when refused,
    Throttled (with the Retry-After it asked for) on 429."""
    req = urllib.request.Request(
        f"{base_url.rstrip('/')}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read(4096)
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode(errors="replace")
        if exc.code == 429:
            wait = retry_after_seconds(exc.headers.get("Retry-After"), 60.0)
            raise Throttled(f"POST {path} answered 429: {detail}", wait) from None
        raise OSError(f"POST {path} answered {exc.code}: {detail}") from None


class Uploader(Generic[T]):
    """A queue of a few items and one thread that hands each to ``upload``."""

    def __init__(self, name: str, upload: Callable[[T], None], maxsize: int = 4) -> None:
        self._name = name
        self._upload = upload
        self._queue: queue.Queue[T | None] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.throttled = 0  # uploads the control plane answered 429
        self.hold_until = 0.0  # monotonic time before which nothing is queued (Retry-After)

    def held(self) -> bool:
        """The control plane asked us to wait: callers drop new items meanwhile."""
        return time.monotonic() < self.hold_until

    def full(self) -> bool:
        return self._queue.full()

    def put(self, item: T) -> bool:
        """Queue ``item``; False when the queue is full (the caller counts it)."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            return False
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._upload(item)
                self.sent += 1
            except Throttled as exc:
                self.throttled += 1
                self.hold_until = time.monotonic() + exc.wait
                log.warning("%s uploads paused for %.0f s: %s", self._name, exc.wait, exc)
            except (OSError, ValueError) as exc:  # urllib errors are OSErrors
                self.failed += 1
                log.warning("%s upload failed: %s", self._name, exc)
