"""``/api/v1/models/{name}/aliases``: movable names for versions (champion, challenger)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from ...schemas import AliasPublic, AliasSet, Page
from ...services import aliases
from ..deps import OperateDep, PageDep, ReadDep, SessionDep

# Documented here, checked by the service with a message naming the fix.
AliasName = Annotated[str, Path(json_schema_extra={"pattern": aliases.ALIAS_PATTERN})]
router = APIRouter(prefix="/models/{name}/aliases", tags=["aliases"])


@router.get("", summary="List a model's aliases")
def list_aliases(name: str, session: SessionDep, page: PageDep, _p: ReadDep) -> Page[AliasPublic]:
    items, total = aliases.list_aliases(session, name, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{alias}", summary="Get one alias")
def get_alias(name: str, alias: str, session: SessionDep, _p: ReadDep) -> AliasPublic:
    return aliases.get_alias(session, name, alias)


@router.put("/{alias}", summary="Set or move an alias (audited: who, from, to)")
def set_alias(
    name: str, alias: AliasName, body: AliasSet, session: SessionDep, principal: OperateDep
) -> AliasPublic:
    return aliases.set_alias(session, name, alias, body.version, who=principal.name)


@router.delete(
    "/{alias}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove an alias (audited)",
)
def remove_alias(name: str, alias: str, session: SessionDep, principal: OperateDep) -> None:
    aliases.remove_alias(session, name, alias, who=principal.name)
