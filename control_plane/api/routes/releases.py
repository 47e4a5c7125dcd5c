"""``/api/v1/releases``: sign a model version; serve the signed manifest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from ...schemas import Page, ReleaseCreate, ReleasePublic
from ...services import releases
from ..deps import DeviceOrReadDep, OperateDep, PageDep, ReadDep, SessionDep, StateDep

router = APIRouter(prefix="/releases", tags=["releases"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_release(
    body: ReleaseCreate, session: SessionDep, state: StateDep, principal: OperateDep
) -> ReleasePublic:
    row = releases.create_release(
        session, state.keyring, body.model_name, body.version, who=principal.name,
        store=state.store, gate=state.settings.release_gate,
        override_reason=body.override_gate_reason,
    )
    return releases.release_public(row)


@router.get("")
def list_releases(
    session: SessionDep, page: PageDep, _p: ReadDep, model: str | None = None
) -> Page[ReleasePublic]:
    rows, total = releases.list_releases(
        session, limit=page.limit, offset=page.offset, model_name=model
    )
    return Page(
        items=[releases.release_public(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{release_id}")
def get_release(release_id: str, session: SessionDep, _p: ReadDep) -> ReleasePublic:
    return releases.release_public(releases.get_release(session, release_id))


@router.get("/{release_id}/manifest")
def get_manifest(release_id: str, session: SessionDep, _p: DeviceOrReadDep) -> dict[str, Any]:
    """The ``protocols.SignedManifest``, exactly as signed."""
    return releases.get_release(session, release_id).manifest
