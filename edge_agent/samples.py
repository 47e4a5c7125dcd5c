"""Opt-in active learning: upload a rate-limited sample of low-confidence frames, and of
candidate negatives mined from the camera's own background.

The inference thread calls :meth:`SampleUploader.offer` on every classified
frame; it returns at once. Only a frame below the confidence threshold, with a
token left in the bucket (``max_per_hour``) and room in the small queue, is
copied; one background thread encodes it as JPEG and POSTs it with its
predictions to the control plane (``POST /api/v1/samples``, device token).
Raw frames leave the park only through here, and only when opted in.

Candidate negatives (regions mode) are crops the agent thinks show no animal, tagged
with where they came from (``candidate``): the pipeline asks :meth:`wants_negative`
before it picks one (a cheap check, so nothing is cut or copied without a token) and
hands it to :meth:`offer_negative`. Their budget (``negative_max_per_hour``) is apart
from the low-confidence samples', a third of it for the empty scene and the rest for
distractors, each bucket one token deep: a walker crossing for a minute yields one
crop, not a burst of the same person. A control plane older than negatives refuses
the field (422): mining stops, logged once, and the other samples go on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from protocols import NegativeSource

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
    candidate: NegativeSource | None = None


class TokenBucket:
    """``per_hour`` tokens an hour, at most ``capacity`` saved up (full at the start)."""

    def __init__(self, per_hour: float, capacity: float) -> None:
        self._rate = per_hour / 3600.0
        self.capacity = capacity if per_hour > 0 else 0.0
        self._tokens = self.capacity
        self._refilled = time.monotonic()

    def ready(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        return self._tokens >= 1.0

    def take(self) -> bool:
        if not self.ready():
            return False
        self._tokens -= 1.0
        return True


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
        negatives_per_hour: int = 0,
    ) -> None:
        self._base_url = control_plane_url
        self._token = api_token
        self.confidence_below = confidence_below
        self.enabled = enabled
        self._bucket = TokenBucket(max_per_hour, float(max(1, min(max_per_hour, 10))))
        self._negatives: dict[str, TokenBucket] = {
            "distractor": TokenBucket(negatives_per_hour * 2 / 3, 1.0),
            "background": TokenBucket(negatives_per_hour / 3, 1.0),
        }
        self.negatives_refused = False  # the control plane does not take them
        self._quality = jpeg_quality
        self._timeout = timeout
        self._uploader: Uploader[_Pending] = Uploader("samples", self._upload)
        self.offered = 0  # frames below the threshold while enabled
        self.rate_limited = 0
        self.negatives_offered = 0

    # -- the inference thread's side -----------------------------------------------------
    def offer(self, camera_id: str, image: Image, result: Inference,
              runtime: ModelRuntime) -> None:
        if not self.enabled or result.confidence >= self.confidence_below:
            return
        self.offered += 1
        if self._uploader.held() or self._uploader.full() or not self._bucket.take():
            self.rate_limited += 1
            return
        if not self._uploader.put(_pending(camera_id, image, result, runtime, None)):
            self.rate_limited += 1

    def wants_negative(self, background: bool) -> bool:
        """Whether a candidate negative would be taken now (a distractor's crop, or one of
        the empty scene with ``background``): the caller cuts one only then."""
        if not self.enabled or self.negatives_refused or self._uploader.held():
            return False
        return self._negatives["background" if background else "distractor"].ready()

    def offer_negative(self, camera_id: str, image: Image, result: Inference,
                       runtime: ModelRuntime, source: NegativeSource) -> None:
        """A crop the agent thinks shows no animal; taken if :meth:`wants_negative`."""
        bucket = self._negatives["background" if source == "background" else "distractor"]
        if self._uploader.full() or not self.wants_negative(source == "background"):
            return
        bucket.take()
        self.negatives_offered += 1
        self._uploader.put(_pending(camera_id, image, result, runtime, source))

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
        body: dict[str, object] = {
            "camera_id": item.camera_id,
            "release_id": item.release_id,
            "model_version": item.model_version,
            "predicted_label": item.top_label,
            "confidence": min(1.0, max(0.0, item.confidence)),
            "predictions": item.predictions,
            "captured_at": item.captured_at.isoformat(),
            "image_jpeg_b64": image_b64,
        }
        if item.candidate is not None:  # off the wire otherwise: older control planes
            body["candidate"] = item.candidate
        try:
            post_json(self._base_url, "/api/v1/samples", self._token, body, self._timeout)
        except OSError as exc:
            if item.candidate is not None and "answered 422" in str(exc) \
                    and "candidate" in str(exc) and not self.negatives_refused:
                self.negatives_refused = True
                log.warning("the control plane does not take candidate negatives (older "
                            "than them): mining stops, other samples go on")
            raise
        log.info("sample uploaded", extra={"camera_id": item.camera_id,
                                           "confidence": round(item.confidence, 3),
                                           "candidate": item.candidate})


def _pending(camera_id: str, image: Image, result: Inference, runtime: ModelRuntime,
             candidate: NegativeSource | None) -> _Pending:
    return _Pending(
        camera_id=camera_id,
        image=image.copy(),  # the frame buffer goes back to capture after this call
        release_id=runtime.release_id,
        model_version=runtime.manifest.model_version,
        predictions={lb: round(float(p), 6)
                     for lb, p in zip(runtime.labels, result.probs, strict=True)},
        top_label=runtime.labels[result.top],
        confidence=float(result.confidence),
        captured_at=datetime.now(UTC),
        candidate=candidate,
    )
