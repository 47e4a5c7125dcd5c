"""Rollouts, foundation level: one wave to the targeted devices.

Starting a rollout sets each device's desired state (revision +1), commits,
then hands the states to the publisher (MQTT, retained). A device's row moves

    pending -> acknowledged   reported release matches, stage loaded/warmed/healthy
    pending -> failed         reported stage failed/rolled_back, or a failed transition
    pending -> superseded     a newer rollout targeted the device
    acknowledged -> failed    the device fell back after acknowledging

and the rollout's state follows from its devices. Waves, gates and deadlines
come later by adding states here, not by rewriting callers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import func
from sqlmodel import Session, col, select

from protocols import DesiredState, ReportedState
from protocols.logs import bind_context

from ..errors import InvalidRequestError, NotFoundError
from ..models import Device, Rollout, RolloutDevice, utc_now
from ..schemas import RolloutDevicePublic, RolloutPublic
from . import audit, releases

log = logging.getLogger(__name__)

DeviceState = Literal["pending", "acknowledged", "failed", "superseded"]
RolloutState = Literal["in_progress", "completed", "failed", "superseded"]
DEVICE_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"acknowledged", "failed", "superseded"}),
    "acknowledged": frozenset({"failed"}),
    "failed": frozenset(),
    "superseded": frozenset(),
}
ACK_STAGES = frozenset({"loaded", "warmed", "healthy"})
FAIL_STAGES = frozenset({"failed", "rolled_back"})


class DesiredStatePublisher(Protocol):
    """Delivers desired states to devices (the MQTT adapter, or nothing in API-only mode)."""

    def publish_desired(self, state: DesiredState) -> None: ...


def can_move(current: str, new: str) -> bool:
    return new in DEVICE_TRANSITIONS.get(current, frozenset())


def rollout_state(device_states: Sequence[str]) -> RolloutState:
    """A rollout's state from its devices' states."""
    if any(s == "failed" for s in device_states):
        return "failed"
    if device_states and all(s == "superseded" for s in device_states):
        return "superseded"
    if all(s in ("acknowledged", "superseded") for s in device_states):
        return "completed"
    return "in_progress"


@dataclass(frozen=True)
class Verdict:
    state: DeviceState
    detail: str


def judge_report(release_id: str, mode: str, reported: ReportedState) -> Verdict | None:
    """What a reported state says about a device's progress to ``release_id`` (None: nothing)."""
    status = reported.shadow if mode == "shadow" else reported.active
    if status is not None and status.release_id == release_id:
        if status.stage in ACK_STAGES:
            return Verdict("acknowledged", f"{mode} release is {status.stage}")
        if status.stage in FAIL_STAGES:
            return Verdict("failed", f"{mode} release is {status.stage}")
    t = reported.last_transition
    if t is not None and t.to_release_id == release_id and not t.ok:
        return Verdict("failed", f"transition failed: {t.reason}"[:1024])
    return None


def desired_of(device: Device) -> DesiredState:
    return DesiredState(
        device_id=device.device_id,
        revision=device.desired_revision,
        release_id=device.desired_release_id,
        mode="shadow" if device.desired_mode == "shadow" else "active",
        fallback_release_id=device.desired_fallback_release_id,
        rollout_id=device.desired_rollout_id,
        issued_at=device.desired_issued_at or utc_now(),
    )


def _fallback(device: Device) -> str | None:
    """What the device runs now: it falls back to this if the new release fails."""
    reported = device.reported or {}
    active = reported.get("active") or {}
    running = active.get("release_id") or device.desired_release_id
    return running if isinstance(running, str) else None


def _targets(session: Session, device_ids: Sequence[str] | None) -> list[Device]:
    query = select(Device).order_by(col(Device.device_id)).with_for_update()
    if device_ids is not None:
        wanted = sorted(set(device_ids))
        if not wanted:
            raise InvalidRequestError("devices is empty: name devices, or null for all")
        rows = list(session.exec(query.where(col(Device.device_id).in_(wanted))).all())
        missing = sorted(set(wanted) - {d.device_id for d in rows})
        if missing:
            raise NotFoundError(
                f"unknown device(s) {missing}: add them with `parkwatch devices add`"
            )
        return rows
    rows = list(session.exec(query).all())
    if not rows:
        raise InvalidRequestError(
            "no devices are provisioned: add one with `parkwatch devices add`"
        )
    return rows


def start_rollout(
    session: Session,
    publisher: DesiredStatePublisher,
    release_id: str,
    device_ids: Sequence[str] | None,
    mode: Literal["active", "shadow"],
    *,
    who: str,
) -> Rollout:
    """Target devices with a release in one wave; commit, then publish their desired states."""
    releases.get_release(session, release_id)
    devices = _targets(session, device_ids)
    rollout = Rollout(
        rollout_id=f"ro-{secrets.token_hex(6)}",
        release_id=release_id,
        mode=mode,
        state="in_progress",
        created_by=who,
    )
    session.add(rollout)
    session.flush()
    now = utc_now()
    for device in devices:
        _supersede(session, device.device_id)
        device.desired_fallback_release_id = _fallback(device)
        device.desired_revision += 1
        device.desired_release_id = release_id
        device.desired_mode = mode
        device.desired_rollout_id = rollout.rollout_id
        device.desired_issued_at = now
        session.add(device)
        session.add(
            RolloutDevice(
                rollout_id=rollout.rollout_id,
                device_id=device.device_id,
                state="pending",
                revision=device.desired_revision,
            )
        )
    audit.record(
        session,
        who,
        "rollout.start",
        f"rollout:{rollout.rollout_id}",
        release_id=release_id,
        mode=mode,
        devices=[d.device_id for d in devices],
    )
    session.commit()
    for device in devices:
        with bind_context(device_id=device.device_id, release_id=release_id):
            publisher.publish_desired(desired_of(device))
    log.info("rollout started", extra={"rollout_id": rollout.rollout_id, "devices": len(devices)})
    return rollout


def _supersede(session: Session, device_id: str) -> None:
    rows = session.exec(
        select(RolloutDevice).where(
            RolloutDevice.device_id == device_id, RolloutDevice.state == "pending"
        )
    ).all()
    for row in rows:
        _move(session, row, "superseded", "a newer rollout targeted this device")


def _move(session: Session, row: RolloutDevice, new: DeviceState, detail: str) -> bool:
    if not can_move(row.state, new):
        return False
    row.state, row.detail, row.updated_at = new, detail, utc_now()
    session.add(row)
    session.flush()
    rollout = session.get(Rollout, row.rollout_id)
    if rollout is not None:
        states = session.exec(
            select(RolloutDevice.state).where(RolloutDevice.rollout_id == row.rollout_id)
        ).all()
        state = rollout_state(list(states))
        if state != rollout.state:
            rollout.state, rollout.updated_at = state, utc_now()
            session.add(rollout)
    return True


def on_reported(session: Session, device: Device, reported: ReportedState) -> str | None:
    """Advance the device's current rollout from its reported state; the new state or None."""
    if device.desired_rollout_id is None:
        return None
    row = session.exec(
        select(RolloutDevice).where(
            RolloutDevice.rollout_id == device.desired_rollout_id,
            RolloutDevice.device_id == device.device_id,
        )
    ).first()
    rollout = session.get(Rollout, device.desired_rollout_id)
    if row is None or rollout is None:
        return None
    verdict = judge_report(rollout.release_id, rollout.mode, reported)
    if verdict is None or not _move(session, row, verdict.state, verdict.detail):
        return None
    log.info(
        "rollout device %s",
        verdict.state,
        extra={"rollout_id": rollout.rollout_id, "detail": verdict.detail},
    )
    return verdict.state


def get_rollout(session: Session, rollout_id: str) -> RolloutPublic:
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        raise NotFoundError(f"no rollout {rollout_id!r}: see `parkwatch rollout list`")
    rows = session.exec(
        select(RolloutDevice)
        .where(RolloutDevice.rollout_id == rollout_id)
        .order_by(col(RolloutDevice.device_id))
    ).all()
    return RolloutPublic(
        rollout_id=rollout.rollout_id,
        release_id=rollout.release_id,
        mode=rollout.mode,
        state=rollout.state,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        updated_at=rollout.updated_at,
        devices=[
            RolloutDevicePublic(
                device_id=r.device_id,
                state=r.state,
                revision=r.revision,
                wave=r.wave,
                detail=r.detail,
                updated_at=r.updated_at,
            )
            for r in rows
        ],
    )


def list_rollouts(session: Session, *, limit: int, offset: int) -> tuple[list[RolloutPublic], int]:
    total = session.exec(select(func.count()).select_from(Rollout)).one()
    ids = session.exec(
        select(Rollout.rollout_id)
        .order_by(col(Rollout.created_at).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [get_rollout(session, i) for i in ids], total


def current_desired_states(session: Session) -> list[DesiredState]:
    """Every device's desired state, to re-publish after a broker restart lost retained ones."""
    rows = session.exec(select(Device).where(col(Device.desired_revision) > 0)).all()
    return [desired_of(d) for d in rows]
