"""Snapshots on request: an operator asks one camera for its latest frame, the device answers
once with a JPEG and the boxes it tracked on it.

Frames never stream: a device's upload is accepted only for a command this control plane
sent it, for that camera, before the command expired, and only once. The command goes over
MQTT (``devices/{id}/commands``, QoS 1, not retained: a device that is offline when asked
does not send a stale picture later); the answer comes over HTTPS with the device's token.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from protocols import DeviceCommand, Snapshot

from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..schemas import SnapshotInfo
from ..store.artifacts import ArtifactStore
from ..store.models import CameraSnapshot, Sample, utc_now
from . import audit
from .devices import get_device
from .samples import decode_jpeg

COMMAND_TTL = timedelta(minutes=2)  # a device that cannot answer by then never will
MAX_JPEG_BYTES = 3 * 1024 * 1024


class CommandPublisher(Protocol):
    def publish_command(self, command: DeviceCommand) -> None: ...


def request(
    session: Session, publisher: CommandPublisher, device_id: str, camera_id: str, *, who: str
) -> CameraSnapshot:
    """Record the ask (audited), then send the command; the caller's session commits."""
    device = get_device(session, device_id)
    cameras = {c.get("camera_id") for c in (device.reported or {}).get("cameras") or []}
    if cameras and camera_id not in cameras:
        raise NotFoundError(
            f"device {device_id} reports no camera {camera_id!r}; it has: "
            + ", ".join(sorted(str(c) for c in cameras))
        )
    now = utc_now()
    row = CameraSnapshot(
        command_id=f"snap-{secrets.token_hex(8)}", device_id=device_id, camera_id=camera_id,
        requested_by=who, requested_at=now, expires_at=now + COMMAND_TTL, boxes=[],
    )
    session.add(row)
    audit.record(session, who, "snapshot.request", f"{device_id}/{camera_id}",
                 command_id=row.command_id)
    session.commit()
    publisher.publish_command(DeviceCommand(
        device_id=device_id, command_id=row.command_id, kind="snapshot", camera_id=camera_id,
        issued_at=now, expires_at=row.expires_at,
    ))
    return row


def accept(
    session: Session, store: ArtifactStore, device_id: str, body: Snapshot
) -> CameraSnapshot:
    """A device's answer; refused unless it answers a live command sent to it, once."""
    row = session.get(CameraSnapshot, body.command_id)
    if row is None or row.device_id != device_id or body.device_id != device_id:
        raise NotFoundError(f"no snapshot command {body.command_id} was sent to {device_id}")
    if row.camera_id != body.camera_id:
        raise InvalidRequestError(
            f"command {body.command_id} asked for camera {row.camera_id}, not {body.camera_id}"
        )
    if row.received_at is not None:
        raise ConflictError(f"command {body.command_id} was already answered")
    if utc_now() > row.expires_at:
        raise ConflictError(f"command {body.command_id} expired at {row.expires_at.isoformat()}")
    sha256, _size = store.put([decode_jpeg(body.image_jpeg_b64, MAX_JPEG_BYTES)])
    row.captured_at = body.captured_at
    row.received_at = utc_now()
    row.width, row.height = body.width, body.height
    row.boxes = [b.model_dump(mode="json") for b in body.boxes]
    row.image_sha256 = sha256
    session.add(row)
    session.commit()
    return row


def latest(session: Session, device_id: str, camera_id: str) -> CameraSnapshot | None:
    """The newest answered snapshot of one camera."""
    return session.exec(
        select(CameraSnapshot)
        .where(CameraSnapshot.device_id == device_id, CameraSnapshot.camera_id == camera_id,
               col(CameraSnapshot.received_at).is_not(None))
        .order_by(col(CameraSnapshot.received_at).desc())
        .limit(1)
    ).first()


def latest_by_camera(
    session: Session, device_ids: list[str] | None
) -> dict[tuple[str, str], SnapshotInfo]:
    """The newest answered snapshot of every camera (of these devices), for the park view."""
    query = select(CameraSnapshot).where(col(CameraSnapshot.received_at).is_not(None))
    if device_ids is not None:
        query = query.where(col(CameraSnapshot.device_id).in_(device_ids))
    out: dict[tuple[str, str], SnapshotInfo] = {}
    for row in session.exec(query.order_by(col(CameraSnapshot.received_at))).all():
        out[(row.device_id, row.camera_id)] = info(row)
    return out


def prune(session: Session, store: ArtifactStore, keep_days: float, now: datetime) -> int:
    """Delete snapshots requested more than ``keep_days`` ago, and their JPEGs where no
    other snapshot or sample uses them; each camera's newest answered one stays.
    Returns how many rows went."""
    newest = (select(sa.func.max(CameraSnapshot.received_at))
              .group_by(col(CameraSnapshot.device_id), col(CameraSnapshot.camera_id)))
    old = session.exec(select(CameraSnapshot).where(
        col(CameraSnapshot.requested_at) < now - timedelta(days=keep_days),
        sa.or_(col(CameraSnapshot.received_at).is_(None),
               col(CameraSnapshot.received_at).not_in(newest)))).all()
    images = {row.image_sha256 for row in old if row.image_sha256}
    for row in old:
        session.delete(row)
    session.commit()
    used = set(session.exec(select(CameraSnapshot.image_sha256)
                            .where(col(CameraSnapshot.image_sha256).in_(images))).all())
    used |= set(session.exec(select(Sample.image_sha256)
                             .where(col(Sample.image_sha256).in_(images))).all())
    for sha256 in images - used:
        store.delete(sha256)
    return len(old)


def info(row: CameraSnapshot) -> SnapshotInfo:
    assert row.captured_at and row.received_at and row.image_sha256  # answered rows only
    return SnapshotInfo(
        command_id=row.command_id, captured_at=row.captured_at, received_at=row.received_at,
        width=row.width or 0, height=row.height or 0, boxes=list(row.boxes or []),
        image_sha256=row.image_sha256,
    )
