"""``/api/v1/groups``: named label selectors over devices."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from ...schemas import GroupCreate, GroupPublic, Page
from ...services import groups
from ..deps import OperateDep, PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/groups", tags=["devices"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a device group")
def create_group(body: GroupCreate, session: SessionDep, principal: OperateDep) -> GroupPublic:
    row = groups.create_group(session, body, who=principal.name)
    return groups.group_public(session, row)


@router.get("", summary="List device groups with their member counts")
def list_groups(session: SessionDep, page: PageDep, _p: ReadDep) -> Page[GroupPublic]:
    items, total = groups.list_groups(session, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{name}", summary="Get one device group")
def get_group(name: str, session: SessionDep, _p: ReadDep) -> GroupPublic:
    return groups.group_public(session, groups.get_group(session, name))


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a device group (devices keep their labels)",
)
def delete_group(name: str, session: SessionDep, principal: OperateDep) -> None:
    groups.delete_group(session, name, who=principal.name)
