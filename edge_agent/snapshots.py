"""Snapshots on request: one frame of one camera, with the boxes the agent saw on it.

Frames stay in the park: nothing is sent unless an operator asks (a ``snapshot`` command on
``devices/{id}/commands``), and each command gives at most one JPEG, sent over HTTPS to
``POST /api/v1/snapshots``. The inference loop offers every frame it processes; a camera
with a pending command gives its next frame (copied before the buffer is reused), and a
small thread encodes and uploads it, so inference never waits on the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from protocols import DeviceCommand

from .uploads import Uploader, jpeg_b64, post_json

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
        self._base_url = control_plane_url
        self._token = token
        self._cameras = frozenset(cameras)
        self._timeout = timeout
        self._pending: dict[str, DeviceCommand] = {}
        self._lock = threading.Lock()
        self._uploader: Uploader[_Taken] = Uploader("snapshots", self._upload)

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
        if not self._uploader.put(taken):
            log.warning("snapshot dropped: the uploader is busy", extra={"camera_id": camera_id})

    def start(self) -> None:
        self._uploader.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._uploader.stop(timeout)

    def _upload(self, item: _Taken) -> None:
        image_b64, width, height = jpeg_b64(item.image, MAX_SIDE, JPEG_QUALITY)
        post_json(self._base_url, "/api/v1/snapshots", self._token, {
            "device_id": item.command.device_id,
            "command_id": item.command.command_id,
            "camera_id": item.command.camera_id,
            "captured_at": item.captured_at.isoformat(),
            "width": width,
            "height": height,
            "boxes": [{"box": list(box), "label": label, "confidence": min(1.0, max(0.0, conf)),
                       "track_id": track} for box, label, conf, track in item.boxes[:64]],
            "image_jpeg_b64": image_b64,
        }, self._timeout)
        log.info("snapshot sent", extra={"camera_id": item.command.camera_id,
                                          "command_id": item.command.command_id})
