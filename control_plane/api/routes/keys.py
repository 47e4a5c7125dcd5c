"""``/api/v1/keys``: the release-signing public keys (active and retired)."""

from __future__ import annotations

from fastapi import APIRouter

from ...schemas import KeyPublic, Page
from ..deps import PageDep, ReadDep, StateDep

router = APIRouter(prefix="/keys", tags=["releases"])


@router.get("", summary="Public keys that verify releases (active first)")
def list_keys(state: StateDep, page: PageDep, _p: ReadDep) -> Page[KeyPublic]:
    pems = state.keyring.public_pems()
    active = state.keyring.active_key_id() if state.keyring.initialised else None
    items = [
        KeyPublic(key_id=k, active=k == active, public_key_pem=pem.decode())
        for k, pem in pems.items()
    ]
    window = items[page.offset : page.offset + page.limit]
    return Page(items=window, total=len(items), limit=page.limit, offset=page.offset)
