"""Snapshots on request: one frame of one camera, with the boxes the agent saw on it.

Frames stay in the park: nothing is sent unless an operator asks (a ``snapshot`` command on
``devices/{id}/commands``), and each command gives at most one JPEG, sent over HTTPS to
``POST /api/v1/snapshots``. The inference loop offers every frame it processes; a camera
with a pending command gives its next frame (copied before the buffer is reused), and a
small thread encodes and uploads it, so inference never waits on the network.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np

from protocols import DeviceCommand

log = logging.getLogger(__name__)
MAX_SIDE = 1280  # px: enough to see the animals, small enough for a slow uplink
JPEG_QUALITY = 80

# (x, y, w, h) as fractions of the frame, label, confidence, track id
SeenBox = tuple[tuple[float, float, float, float], str, float, int | None]
BoxSource = Callable[[], Sequence[SeenBox]]


@dataclass
class _Taken:
    command: DeviceCommand
    image: np.ndarray
    boxes: list[SeenBox]
    captured_at: datetime


class SnapshotTaker:
    """Pending snapshot commands per camera, and the thread that uploads what was taken."""

    def __init__(self, control_plane_url: str, token: str, cameras: Sequence[str],
                 timeout: float = 10.0) -> None:
        self._url = control_plane_url.rstrip("/") + "/api/v1/snapshots"
        self._token = token
        self._cameras = frozenset(cameras)
        self._timeout = timeout
        self._pending: dict[str, DeviceCommand] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Taken | None] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def request(self, command: DeviceCommand) -> None:
        """A command from the control plane (paho's thread): remember it for its camera."""
        if command.kind != "snapshot":
            log.warning("ignored command of unknown kind %r", command.kind)
            return
        if command.camera_id not in self._cameras:
            log.warning("snapshot asked for unknown camera %r; this agent has %s",
                        command.camera_id, ", ".join(sorted(self._cameras)) or "none",
                        extra={"camera_id": command.camera_id})
            return
        if command.expires_at is not None and command.expires_at < datetime.now(UTC):
            log.info("snapshot command expired before it arrived",
                     extra={"camera_id": command.camera_id, "command_id": command.command_id})
            return
        with self._lock:
            self._pending[command.camera_id] = command  # the newest ask wins
        log.info("snapshot asked", extra={"camera_id": command.camera_id,
                                           "command_id": command.command_id})

    def wanted(self, camera_id: str) -> bool:
        """Cheap, per frame: does this camera owe a snapshot?"""
        return camera_id in self._pending

    def offer(self, camera_id: str, image: np.ndarray, boxes: BoxSource) -> None:
        """The inference loop's thread, before the frame's buffer is reused."""
        with self._lock:
            command = self._pending.pop(camera_id, None)
        if command is None:
            return
        taken = _Taken(command, image.copy(), list(boxes()), datetime.now(UTC))
        try:
            self._queue.put_nowait(taken)
        except queue.Full:
            self.failed += 1
            log.warning("snapshot dropped: the uploader is busy", extra={"camera_id": camera_id})

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshots", daemon=True)
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
            except (OSError, ValueError) as exc:  # urllib errors are OSErrors
                self.failed += 1
                log.warning("snapshot upload failed: %s", exc,
                            extra={"camera_id": item.command.camera_id})

    def _upload(self, item: _Taken) -> None:
        image = item.image
        h, w = image.shape[:2]
        if max(h, w) > MAX_SIDE:
            scale = MAX_SIDE / max(h, w)
            image = np.asarray(cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))),
                                          interpolation=cv2.INTER_AREA), np.uint8)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("JPEG encoding failed")
        body = json.dumps({
            "device_id": item.command.device_id,
            "command_id": item.command.command_id,
            "camera_id": item.command.camera_id,
            "captured_at": item.captured_at.isoformat(),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "boxes": [{"box": list(box), "label": label, "confidence": min(1.0, max(0.0, conf)),
                       "track_id": track} for box, label, conf, track in item.boxes[:64]],
            "image_jpeg_b64": base64.b64encode(np.asarray(jpeg).tobytes()).decode(),
        }).encode()
        req = urllib.request.Request(self._url, data=body, method="POST", headers={
            "Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                resp.read(4096)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace")
            raise OSError(f"POST /api/v1/snapshots answered {exc.code}: {detail}") from None
        log.info("snapshot sent", extra={"camera_id": item.command.camera_id,
                                          "command_id": item.command.command_id})
