"""Devices: provisioning (id, token, agent config) and what they tell us over MQTT."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from protocols import DeviceStatus, ReportedState, check_device_id

from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..schemas import CameraConfig, DeviceCreate, DevicePublic
from ..store.models import Device, utc_now
from . import audit, auth, device_messages
from .device_messages import DeviceRow, StatusReceipt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentEndpoints:
    """What a provisioned agent is told: where the API and the broker are, whom to trust."""

    control_plane_url: str
    mqtt_url: str
    trusted_public_keys: list[str]
    # (device_id, token id) -> broker (username, password); None: no per-device login
    mqtt_credentials: Callable[[str, int], tuple[str, str]] | None = None


def toml_string(value: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML, except DEL which TOML wants escaped)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def agent_config_toml(
    device_id: str,
    token: str,
    endpoints: AgentEndpoints,
    body: DeviceCreate,
    mqtt_login: tuple[str, str] | None = None,
) -> str:
    """The agent's config file (docs/contracts.md, "Agent config file")."""
    keys = ", ".join(toml_string(k) for k in endpoints.trusted_public_keys)
    lines = [
        "# parkwatch agent config, written by `parkwatch devices create`. Keep it secret:",
        "# api_token is this device's credential.",
        f"device_id = {toml_string(device_id)}",
        f"control_plane_url = {toml_string(endpoints.control_plane_url)}",
        f"api_token = {toml_string(token)}",
        f"mqtt_url = {toml_string(endpoints.mqtt_url)}",
        *_mqtt_login_lines(mqtt_login),
        f"data_dir = {toml_string(body.agent_data_dir)}",
        f"trusted_public_keys = [{keys}]",
    ]
    if body.cameras:
        for cam in body.cameras:
            lines += ["", *_camera_lines(cam)]
    else:
        lines += [
            "",
            "# Add one table per camera, e.g.:",
            "# [[cameras]]",
            '# camera_id = "gate"',
            '# source = "rtsp://10.0.0.5/stream1"   # or a file path, or a device index "0"',
            "# loop = false",
            "# sample_fps = 5.0",
        ]
    return "\n".join(lines) + "\n"


def _mqtt_login_lines(login: tuple[str, str] | None) -> list[str]:
    if login is None:
        return []
    return [
        f"mqtt_username = {toml_string(login[0])}",
        f"mqtt_password = {toml_string(login[1])}",
        '# mqtt_ca_file = "/etc/parkwatch/ca.pem"   # CA of the broker certificate (mqtts://)',
    ]


def _camera_lines(cam: CameraConfig) -> list[str]:
    return [
        "[[cameras]]",
        f"camera_id = {toml_string(cam.camera_id)}",
        f"source = {toml_string(cam.source)}",
        f"loop = {'true' if cam.loop else 'false'}",
        f"sample_fps = {float(cam.sample_fps)!r}",
    ]


def provision(
    session: Session, body: DeviceCreate, endpoints: AgentEndpoints, *, who: str
) -> tuple[Device, str, str]:
    """Create a device and its ``device`` token; return (device, token, agent config TOML)."""
    check_device_id(body.device_id)
    if not endpoints.trusted_public_keys:
        raise InvalidRequestError("no signing key yet: run `parkwatch keys init` first")
    if session.get(Device, body.device_id) is not None:
        raise ConflictError(
            f"device {body.device_id!r} already exists: pick another id, or give it new "
            f"credentials with `parkwatch devices reissue {body.device_id}`"
        )
    device = Device(device_id=body.device_id, labels=dict(body.labels))
    session.add(device)
    session.flush()
    row, token = auth.create_token(
        session, f"device:{body.device_id}", ["device"], who=who, device_id=body.device_id
    )
    audit.record(
        session, who, "device.provision", f"device:{body.device_id}", labels=dict(body.labels)
    )
    session.commit()
    login = None
    if endpoints.mqtt_credentials is not None and row.id is not None:
        login = endpoints.mqtt_credentials(body.device_id, row.id)
    return device, token, agent_config_toml(body.device_id, token, endpoints, body, login)


def get_device(session: Session, device_id: str) -> Device:
    row = session.get(Device, device_id)
    if row is None:
        raise NotFoundError(f"no device {device_id!r}: add it with `parkwatch devices create`")
    return row


@dataclass(frozen=True)
class DeviceFilter:
    """Device list filters; all given ones must hold."""

    online: bool | None = None
    labels: dict[str, str] = field(default_factory=dict)
    group_selector: dict[str, str] = field(default_factory=dict)
    release: str | None = None  # desired or currently active
    desired_release: str | None = None
    current_release: str | None = None


def _json_col(name: str) -> Any:
    return Device.__table__.c[name]  # type: ignore[attr-defined]


def _current_release() -> Any:
    return _json_col("reported")[("active", "release_id")].as_string()


def selector_conditions(selector: dict[str, str]) -> list[Any]:
    """SQL conditions: the device carries every ``key=value`` of ``selector``."""
    return [_json_col("labels")[key].as_string() == value for key, value in selector.items()]


def list_devices(
    session: Session, *, limit: int, offset: int, flt: DeviceFilter | None = None
) -> tuple[list[Device], int]:
    flt = flt or DeviceFilter()
    where: list[Any] = selector_conditions(flt.labels) + selector_conditions(flt.group_selector)
    if flt.online is not None:
        where.append(col(Device.online).is_(flt.online))
    if flt.desired_release is not None:
        where.append(col(Device.desired_release_id) == flt.desired_release)
    if flt.current_release is not None:
        where.append(_current_release() == flt.current_release)
    if flt.release is not None:
        where.append(
            or_(col(Device.desired_release_id) == flt.release, _current_release() == flt.release)
        )
    total = session.exec(select(func.count()).select_from(Device).where(*where)).one()
    rows = session.exec(
        select(Device).where(*where).order_by(col(Device.device_id)).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def update_labels(
    session: Session, device_id: str, set_labels: dict[str, str], remove: list[str], *, who: str
) -> Device:
    """Set and remove labels of one device (audited with both)."""
    device = get_device(session, device_id)
    labels = {k: v for k, v in device.labels.items() if k not in set(remove)}
    labels.update(set_labels)
    if len(labels) > 64:
        raise InvalidRequestError("a device can carry at most 64 labels: remove some first")
    device.labels = labels
    session.add(device)
    audit.record(session, who, "device.label", f"device:{device_id}", set=set_labels, remove=remove)
    session.commit()
    return device


def device_public(row: Device) -> DevicePublic:
    return DevicePublic(
        device_id=row.device_id,
        labels=row.labels,
        online=row.online,
        last_seen=row.last_seen,
        agent_version=row.agent_version,
        desired_release_id=row.desired_release_id,
        desired_revision=row.desired_revision,
        desired_mode=row.desired_mode,
        current_release_id=_active_release(row.reported),
        clock_skew_s=row.clock_skew_s,
        decommissioned_at=row.decommissioned_at,
        reported=row.reported,
        created_at=row.created_at,
    )


def _active_release(reported: dict[str, Any] | None) -> str | None:
    active = (reported or {}).get("active")
    value = active.get("release_id") if isinstance(active, dict) else None
    return value if isinstance(value, str) else None


def _seen(device: Device, at: datetime) -> None:
    if device.last_seen is None or at > device.last_seen:
        device.last_seen = at


def apply_status(
    session: Session, status: DeviceStatus, *, measure_skew: bool = True
) -> Device | None:
    """Record online/offline, in the order the messages arrive here.

    The device's clock is never compared: it may be wrong, and a Last Will carries the
    time its connection began, older than the ``online`` it must overrule. When both
    messages name their session (``{process}-{n}``) that order holds however ingest
    workers interleave them (:func:`status_supersedes`). None for an unknown device.

    An ``online`` sent just now (``measure_skew``: not a retained copy replayed on our
    subscribe) measures the device's clock skew: its ``at`` minus our receipt.
    Ingest stores whole runs of messages with ``device_messages.store_run``.
    """
    session.flush()
    run = device_messages.store_run(session, [StatusReceipt(status, retained=not measure_skew)])
    if run.outcomes["status", "unknown_device"]:
        return None
    return session.get(Device, status.device_id, populate_existing=True)


def apply_reported(session: Session, reported: ReportedState) -> Device | None:
    """Store the device's reported state. None for an unknown device."""
    _applied, outcomes = apply_reported_many(session, [reported])
    if outcomes["unknown_device"]:
        return None
    return session.get(Device, reported.device_id, populate_existing=True)


def apply_reported_many(
    session: Session, reports: Sequence[ReportedState]
) -> tuple[list[tuple[DeviceRow, ReportedState]], Counter[str]]:
    """Store reported states in the order they arrive here (a few statements whatever
    their number); the ones applied with their devices, for the rollout engine, and the
    outcome of each (``applied``, ``stale``: about an older desired revision than the
    stored one, ``unknown_device``)."""
    session.flush()
    run = device_messages.store_run(session, reports)
    return run.reports, Counter({o: n for (_k, o), n in run.outcomes.items()})


def touch_many(session: Session, device_ids: Collection[str]) -> set[str]:
    """Mark devices as seen now, in two statements whatever their number (a telemetry
    batch touches each of its devices); returns the ones that exist."""
    ids = sorted(set(device_ids))
    if not ids:
        return set()
    known = set(session.exec(select(Device.device_id).where(col(Device.device_id).in_(ids))))
    device_messages.touch(session, known)
    return known


def touch(session: Session, device_id: str) -> bool:
    """Mark a device as seen now; False when it is unknown."""
    device = session.get(Device, device_id)
    if device is None:
        return False
    _seen(device, utc_now())
    session.add(device)
    return True
