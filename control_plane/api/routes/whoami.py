"""``/api/v1/whoami``: the caller's token name and what it may do (the dashboard hides what
it may not, the API refuses it anyway)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from ..deps import DeviceOrReadDep

router = APIRouter(tags=["access"])


class WhoAmI(BaseModel):
    name: str
    scopes: list[str]
    device_id: str | None
    can_read: bool
    can_operate: bool
    can_admin: bool


@router.get("/whoami", summary="The calling token: its name, scopes and what it may do")
def whoami(principal: DeviceOrReadDep) -> WhoAmI:
    return WhoAmI(
        name=principal.name,
        scopes=sorted(principal.scopes),
        device_id=principal.device_id,
        can_read=principal.has("read"),
        can_operate=principal.has("operate"),
        can_admin=principal.has("admin"),
    )
