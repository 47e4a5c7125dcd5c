"""``/api/v1/devices``: provision devices; their liveness, desired and reported state."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, status

from ...errors import InvalidRequestError
from ...schemas import (
    DeviceCreate,
    DeviceLabelsUpdate,
    DeviceProvisioned,
    DevicePublic,
    DeviceReissue,
    Page,
)
from ...services import device_lifecycle, devices, groups
from ..deps import AdminDep, OperateDep, PageDep, ReadDep, SessionDep, StateDep, reads_only

router = APIRouter(prefix="/devices", tags=["devices"])
_LABEL_KEY = re.compile(r"^[A-Za-z0-9._/-]{1,64}$")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Provision a device")
def provision_device(
    body: DeviceCreate, session: SessionDep, state: StateDep, principal: AdminDep
) -> DeviceProvisioned:
    device, token, config = devices.provision(
        session, body, state.agent_endpoints(), who=principal.name
    )
    return DeviceProvisioned(device_id=device.device_id, token=token, agent_config_toml=config)


LABEL_FILTER = r"^[A-Za-z0-9._/-]{1,64}=.{0,256}$"


def parse_selector(values: list[str]) -> dict[str, str]:
    """``["park=p1", "camera=ptz"]`` -> a selector; 422 naming a malformed item."""
    found: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not _LABEL_KEY.fullmatch(key) or len(value) > 256:
            raise InvalidRequestError(
                f"label {item[:80]!r} must look like key=value (key: A-Z a-z 0-9 . _ / -)"
            )
        found[key] = value
    return found


@router.get("", summary="List devices, filtered by liveness, labels, group and release")
@reads_only
def list_devices(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    online: bool | None = None,
    label: Annotated[
        list[str],
        Query(max_length=32, description="key=value; repeatable, all must match.",
              # Documented here, checked by parse_selector with a message naming the fix.
              json_schema_extra={"items": {"type": "string", "pattern": LABEL_FILTER}}),
    ] = [],  # noqa: B006 - FastAPI copies query defaults
    group: Annotated[str | None, Query(max_length=64, description="A device group.")] = None,
    release: Annotated[
        str | None, Query(max_length=64, description="Desired or currently active release.")
    ] = None,
    desired_release: Annotated[str | None, Query(max_length=64)] = None,
    current_release: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[DevicePublic]:
    flt = devices.DeviceFilter(
        online=online,
        labels=parse_selector(label),
        group_selector=groups.get_group(session, group).selector if group is not None else {},
        release=release,
        desired_release=desired_release,
        current_release=current_release,
    )
    rows, total = devices.list_devices(session, limit=page.limit, offset=page.offset, flt=flt)
    return Page(
        items=[devices.device_public(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{device_id}", summary="Get one device with its last reported state")
def get_device(device_id: str, session: SessionDep, _p: ReadDep) -> DevicePublic:
    return devices.device_public(devices.get_device(session, device_id))


@router.patch("/{device_id}/labels", summary="Set and remove labels of a device (audited)")
def update_labels(
    device_id: str, body: DeviceLabelsUpdate, session: SessionDep, principal: OperateDep
) -> DevicePublic:
    row = devices.update_labels(
        session, device_id, dict(body.set), list(body.remove), who=principal.name
    )
    return devices.device_public(row)


@router.post("/{device_id}/reissue", summary="New credentials for a device (rotation, new "
             "hardware, back in service); the old token is revoked; its history stays")
def reissue_device(device_id: str, body: DeviceReissue, session: SessionDep, state: StateDep,
                   principal: AdminDep) -> DeviceProvisioned:
    device, token, config = device_lifecycle.reissue(
        session, device_id, body, state.agent_endpoints(), who=principal.name)
    state.tokens.forget_all()  # the old token is refused from the next call on
    return DeviceProvisioned(device_id=device.device_id, token=token, agent_config_toml=config)


@router.post("/{device_id}/decommission", summary="Take a device out of service: its tokens "
             "are revoked; its history stays")
def decommission_device(device_id: str, session: SessionDep, state: StateDep,
                        principal: AdminDep,
                        reason: Annotated[str, Query(min_length=1, max_length=512)]
                        ) -> DevicePublic:
    row = device_lifecycle.decommission(session, device_id, who=principal.name, reason=reason)
    state.tokens.forget_all()  # its tokens are refused from the next call on
    return devices.device_public(row)
