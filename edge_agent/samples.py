"""Opt-in active learning: upload a rate-limited sample of low-confidence frames.

The inference thread calls :meth:`SampleUploader.offer` on every classified
frame; it returns at once. Only a frame below the confidence threshold, with a
token left in the bucket (``max_per_hour``) and room in the small queue, is
copied; one background thread encodes it as JPEG and POSTs it with its
predictions to the control plane (``POST /api/v1/samples``, device token).
Raw frames leave the park only through here, and only when opted in.
"""

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
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np

from protocols.api_errors import retry_after_seconds

from .capture import Image
from .runtime import Inference, ModelRuntime

log = logging.getLogger(__name__)

MAX_SIDE = 640  # larger frames are shrunk before encoding


class _Throttled(Exception):
    """The control plane refused an upload for its rate; ``wait`` s is what it asked."""

    def __init__(self, message: str, wait: float) -> None:
        super().__init__(message)
        self.wait = wait


@dataclass(frozen=True)
class _Pending:
    camera_id: str
    image: Image
    release_id: str
    model_version: str
    predictions: dict[str, float]
    top_label: str
    confidence: float
    captured_at: datetime


class SampleUploader:
    """A token bucket, a queue of a few frames and one uploading thread."""

    def __init__(
        self,
        control_plane_url: str,
        api_token: str,
        *,
        confidence_below: float,
        max_per_hour: int,
        jpeg_quality: int = 85,
        timeout: float = 30.0,
        enabled: bool = False,
    ) -> None:
        self._url = f"{control_plane_url.rstrip('/')}/api/v1/samples"
        self._token = api_token
        self.confidence_below = confidence_below
        self.enabled = enabled
        self._capacity = float(max(1, min(max_per_hour, 10)))  # burst
        self._rate = max_per_hour / 3600.0
        self._tokens = self._capacity
        self._refilled = time.monotonic()
        self._quality = jpeg_quality
        self._timeout = timeout
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self.offered = 0  # frames below the threshold while enabled
        self.uploaded = 0
        self.failed = 0
        self.rate_limited = 0
        self.throttled = 0  # uploads the control plane answered 429
        self._hold_until = 0.0  # monotonic time before which nothing is offered (Retry-After)

    # -- the inference thread's side -----------------------------------------------------
    def offer(self, camera_id: str, image: Image, result: Inference,
              runtime: ModelRuntime) -> None:
        if not self.enabled or result.confidence >= self.confidence_below:
            return
        self.offered += 1
        now = time.monotonic()
        if now < self._hold_until:
            self.rate_limited += 1
            return
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1.0 or self._queue.full():
            self.rate_limited += 1
            return
        self._tokens -= 1.0
        pending = _Pending(
            camera_id=camera_id,
            image=image.copy(),  # the frame buffer goes back to capture after this call
            release_id=runtime.release_id,
            model_version=runtime.manifest.model_version,
            predictions={lb: round(float(p), 6)
                         for lb, p in zip(runtime.labels, result.probs, strict=True)},
            top_label=runtime.labels[result.top],
            confidence=float(result.confidence),
            captured_at=datetime.now(UTC),
        )
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            self.rate_limited += 1

    # -- the upload thread ---------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="samples", daemon=True)
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
                self.uploaded += 1
            except _Throttled as exc:
                self.throttled += 1
                self._hold_until = time.monotonic() + exc.wait
                log.warning("sample uploads paused for %.0f s: %s", exc.wait, exc)
            except (OSError, ValueError) as exc:  # urllib errors are OSErrors
                self.failed += 1
                log.warning("sample upload failed: %s", exc)

    def _upload(self, item: _Pending) -> None:
        image = item.image
        h, w = image.shape[:2]
        if max(h, w) > MAX_SIDE:
            scale = MAX_SIDE / max(h, w)
            image = np.asarray(cv2.resize(image, (max(1, int(w * scale)),
                                                  max(1, int(h * scale))),
                                          interpolation=cv2.INTER_AREA), np.uint8)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        body = json.dumps({
            "camera_id": item.camera_id,
            "release_id": item.release_id,
            "model_version": item.model_version,
            "predicted_label": item.top_label,
            "confidence": min(1.0, max(0.0, item.confidence)),
            "predictions": item.predictions,
            "captured_at": item.captured_at.isoformat(),
            "image_jpeg_b64": base64.b64encode(np.asarray(jpeg).tobytes()).decode(),
        }).encode()
        req = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                resp.read(4096)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace")
            if exc.code == 429:
                wait = retry_after_seconds(exc.headers.get("Retry-After"), 60.0)
                raise _Throttled(f"POST /api/v1/samples answered 429: {detail}", wait) from None
            raise OSError(f"POST /api/v1/samples answered {exc.code}: {detail}") from None
        log.info("sample uploaded", extra={"camera_id": item.camera_id,
                                           "confidence": round(item.confidence, 3)})
