"""The audit log: who did what to which object."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..store.models import AuditEntry


def record(session: Session, who: str, action: str, target: str, **detail: Any) -> AuditEntry:
    """Add an audit entry to the session (committed with the change it describes)."""
    entry = AuditEntry(who=who[:128], action=action, target=target[:256], detail=detail)
    session.add(entry)
    return entry


def list_entries(
    session: Session,
    *,
    limit: int,
    offset: int,
    action: str | None = None,
    who: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
) -> tuple[list[AuditEntry], int]:
    """Entries newest first; ``target`` matches a prefix (``model:petnet`` finds its aliases)."""
    where: list[Any] = []
    if action is not None:
        where.append(col(AuditEntry.action) == action)
    if who is not None:
        where.append(col(AuditEntry.who) == who)
    if target is not None:
        escaped = target.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(col(AuditEntry.target).like(f"{escaped}%", escape="\\"))
    if since is not None:
        where.append(col(AuditEntry.at) >= since)
    rows = session.exec(
        select(AuditEntry)
        .where(*where)
        .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    total = session.exec(select(func.count()).select_from(AuditEntry).where(*where)).one()
    return list(rows), total
