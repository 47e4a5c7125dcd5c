"""Opt-in active learning: upload a rate-limited sample of low-confidence frames.

The inference thread calls :meth:`SampleUploader.offer` on every classified
frame; it returns at once. Only a frame below the confidence threshold, with a
token left in the bucket (``max_per_hour``) and room in the small queue, is
copied; one background thread encodes it as JPEG and POSTs it with its
predictions to the control plane (``POST /api/v1/samples``, device token).
Raw frames leave the park only through here, and only when opted in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from .capture import Image
from .runtime import Inference, ModelRuntime
from .uploads import Uploader, jpeg_b64, post_json

log = logging.getLogger(__name__)

MAX_SIDE = 640  # larger frames are shrunk before encoding


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
        self._base_url = control_plane_url
        self._token = api_token
        self.confidence_below = confidence_below
        self.enabled = enabled
        self._capacity = float(max(1, min(max_per_hour, 10)))  # burst
        self._rate = max_per_hour / 3600.0
        self._tokens = self._capacity
        self._refilled = time.monotonic()
        self._quality = jpeg_quality
        self._timeout = timeout
        self._uploader: Uploader[_Pending] = Uploader("samples", self._upload)
        self.offered = 0  # frames below the threshold while enabled
        self.rate_limited = 0

    # -- the inference thread's side -----------------------------------------------------
    def offer(self, camera_id: str, image: Image, result: Inference,
              runtime: ModelRuntime) -> None:
        if not self.enabled or result.confidence >= self.confidence_below:
            return
        self.offered += 1
        now = time.monotonic()
        if self._uploader.held():
            self.rate_limited += 1
            return
        self._tokens = min(self._capacity, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1.0 or self._uploader.full():
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
        if not self._uploader.put(pending):
            self.rate_limited += 1

    # -- the upload thread ---------------------------------------------------------------
    @property
    def uploaded(self) -> int:
        return self._uploader.sent

    @property
    def failed(self) -> int:
        return self._uploader.failed

    @property
    def throttled(self) -> int:
        return self._uploader.throttled

    def start(self) -> None:
        self._uploader.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._uploader.stop(timeout)

    def _upload(self, item: _Pending) -> None:
        image_b64, _w, _h = jpeg_b64(item.image, MAX_SIDE, self._quality)
        post_json(self._base_url, "/api/v1/samples", self._token, {
            "camera_id": item.camera_id,
            "release_id": item.release_id,
            "model_version": item.model_version,
            "predicted_label": item.top_label,
            "confidence": min(1.0, max(0.0, item.confidence)),
            "predictions": item.predictions,
            "captured_at": item.captured_at.isoformat(),
            "image_jpeg_b64": image_b64,
        }, self._timeout)
        log.info("sample uploaded", extra={"camera_id": item.camera_id,
                                           "confidence": round(item.confidence, 3)})
