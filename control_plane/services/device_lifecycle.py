"""A device after provisioning: decommission it, or re-issue its credentials (rotation,
replaced hardware, back in service). Its id, labels and history (telemetry, events,
rollouts, audit) stay in every case; only its token, and so its broker password
(derived from the token's id), change.

The broker learns of it at the next `parkwatch mqtt acl` and reload: a device without a
live token has no broker login.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from ..schemas import DeviceCreate, DeviceReissue
from ..store.models import ApiToken, Device, utc_now
from . import audit, auth
from .devices import AgentEndpoints, agent_config_toml, get_device


def _revoke_tokens(session: Session, device_id: str) -> list[int]:
    rows = session.exec(select(ApiToken).where(ApiToken.device_id == device_id,
                                               col(ApiToken.revoked).is_(False))).all()
    for row in rows:
        row.revoked = True
        session.add(row)
    return [row.id for row in rows if row.id is not None]


def decommission(session: Session, device_id: str, *, who: str, reason: str) -> Device:
    """Take a device out of service: its tokens are revoked (API at once, broker at the
    next `mqtt acl`); it keeps its history. Idempotent."""
    device = get_device(session, device_id)
    revoked = _revoke_tokens(session, device_id)
    if device.decommissioned_at is None:
        device.decommissioned_at = utc_now()
        device.online = False
        session.add(device)
    audit.record(session, who, "device.decommission", f"device:{device_id}",
                 revoked_tokens=revoked, reason=reason)
    session.commit()
    return device


def reissue(session: Session, device_id: str, body: DeviceReissue, endpoints: AgentEndpoints,
            *, who: str) -> tuple[Device, str, str]:
    """New token (and broker password) for an existing device; the old ones are revoked.
    Brings a decommissioned device back. Returns (device, token, agent config TOML)."""
    device = get_device(session, device_id)
    revoked = _revoke_tokens(session, device_id)
    was_decommissioned = device.decommissioned_at is not None
    device.decommissioned_at = None
    session.add(device)
    row, token = auth.create_token(session, f"device:{device_id}", ["device"], who=who,
                                   device_id=device_id)
    audit.record(session, who, "device.reissue", f"device:{device_id}", revoked_tokens=revoked,
                 reason=body.reason, recommissioned=was_decommissioned)
    session.commit()
    login = None
    if endpoints.mqtt_credentials is not None and row.id is not None:
        login = endpoints.mqtt_credentials(device_id, row.id)
    spec = DeviceCreate(device_id=device_id, labels=dict(device.labels), cameras=body.cameras,
                        agent_data_dir=body.agent_data_dir)
    return device, token, agent_config_toml(device_id, token, endpoints, spec, login)
