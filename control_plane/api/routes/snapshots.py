"""Snapshots on request: an operator asks a camera for one frame; its device answers once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel

from protocols import Snapshot

from ...errors import ConflictError, NotFoundError, PermissionDeniedError
from ...schemas import SnapshotInfo
from ...services import snapshots
from ...services.auth import Principal
from ..deps import OperateDep, ReadDep, SessionDep, StateDep, require

router = APIRouter(tags=["snapshots"])
DeviceDep = Annotated[Principal, Depends(require("device"))]
CAMERA = "/devices/{device_id}/cameras/{camera_id}/snapshot"


class SnapshotAsked(BaseModel):
    command_id: str
    expires_at: str


@router.post(CAMERA, status_code=status.HTTP_202_ACCEPTED,
             summary="Ask a camera for one frame with its boxes (audited; never streamed)")
def ask(device_id: str, camera_id: str, session: SessionDep, state: StateDep,
        principal: OperateDep) -> SnapshotAsked:
    if state.mqtt is None:
        raise ConflictError("this control plane runs without MQTT: it cannot reach devices")
    row = snapshots.request(session, state.mqtt, device_id, camera_id, who=principal.name)
    return SnapshotAsked(command_id=row.command_id, expires_at=row.expires_at.isoformat())


@router.get(CAMERA, summary="The camera's latest snapshot (its JPEG: GET /artifacts/{sha256})")
def latest(device_id: str, camera_id: str, session: SessionDep, _p: ReadDep) -> SnapshotInfo:
    row = snapshots.latest(session, device_id, camera_id)
    if row is None:
        raise NotFoundError(f"no snapshot of {device_id}/{camera_id} yet: ask for one")
    return snapshots.info(row)


@router.post("/snapshots", status_code=status.HTTP_201_CREATED,
             summary="A device answers a snapshot command (device token)")
def answer(body: Snapshot, session: SessionDep, state: StateDep,
           principal: DeviceDep) -> SnapshotInfo:
    if principal.device_id is None:
        raise PermissionDeniedError(
            f"token {principal.name!r} belongs to no device: snapshots come from devices")
    return snapshots.info(snapshots.accept(session, state.store, principal.device_id, body))
