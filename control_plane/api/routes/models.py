"""``/api/v1/models``: register and browse model versions."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from protocols import ModelVersionCreate

from ...errors import InvalidRequestError
from ...schemas import ModelPublic, ModelVersionPublic, Page, VersionComparison
from ...services import registry, release_gate, versions
from ..deps import AdminDep, OperateDep, PageDep, ReadDep, SessionDep, StateDep

router = APIRouter(prefix="/models", tags=["models"])


@router.post("/{name}/versions", status_code=status.HTTP_201_CREATED)
def register_version(
    name: str,
    body: ModelVersionCreate,
    session: SessionDep,
    state: StateDep,
    principal: OperateDep,
) -> ModelVersionPublic:
    if body.model_name != name:
        raise InvalidRequestError(
            f"body model_name {body.model_name!r} differs from the URL's {name!r}"
        )
    row = registry.register_version(session, state.store, body, who=principal.name)
    return registry.describe(session, name, row)


@router.get("")
def list_models(session: SessionDep, page: PageDep, _p: ReadDep) -> Page[ModelPublic]:
    items, total = registry.list_models(session, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{name}/versions")
def list_versions(
    name: str, session: SessionDep, page: PageDep, _p: ReadDep
) -> Page[ModelVersionPublic]:
    items, total = versions.list_versions(session, name, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: str, session: SessionDep, _p: ReadDep) -> ModelVersionPublic:
    """One version by number, or by alias (``champion``)."""
    return registry.describe(session, name, registry.get_version(session, name, version))


@router.get("/{name}/compare", summary="Two versions side by side, with the release gate's "
            "verdict on each")
def compare_versions(name: str, a: str, b: str, session: SessionDep, state: StateDep,
                     _p: ReadDep) -> VersionComparison:
    """``a`` and ``b`` are version numbers or aliases (``champion``)."""
    return release_gate.compare(session, name, a, b, state.settings.release_gate)


@router.delete(
    "/{name}/versions/{version}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an unused version (409 names the releases/devices/aliases using it)",
)
def delete_version(name: str, version: str, session: SessionDep, principal: AdminDep) -> None:
    versions.delete_version(session, name, version, who=principal.name)
