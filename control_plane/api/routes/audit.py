"""``/api/v1/audit``: the audit log (admin only; an addition to docs/contracts.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ...schemas import AuditEntryPublic, Page
from ...schemas.common import UtcDatetime
from ...services import audit
from ..deps import AdminDep, PageDep, SessionDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", summary="The audit log, newest first")
def list_audit(
    session: SessionDep,
    page: PageDep,
    _p: AdminDep,
    action: Annotated[str | None, Query(max_length=64)] = None,
    who: Annotated[str | None, Query(max_length=128)] = None,
    target: Annotated[
        str | None, Query(max_length=256, description="Prefix, e.g. model:petnet")
    ] = None,
    since: UtcDatetime | None = None,
) -> Page[AuditEntryPublic]:
    rows, total = audit.list_entries(
        session,
        limit=page.limit,
        offset=page.offset,
        action=action,
        who=who,
        target=target,
        since=since,
    )
    items = [
        AuditEntryPublic(
            id=r.id or 0, at=r.at, who=r.who, action=r.action, target=r.target, detail=r.detail
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
