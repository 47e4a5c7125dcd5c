"""Device groups: a named label selector (``park=p1,camera=ptz``) resolved at query time,
so a device joins or leaves a group by its labels alone."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import ConflictError, NotFoundError
from ..schemas import GroupCreate, GroupPublic
from ..store.models import Device, DeviceGroup
from . import audit
from .devices import selector_conditions


def create_group(session: Session, body: GroupCreate, *, who: str) -> DeviceGroup:
    if session.get(DeviceGroup, body.name) is not None:
        raise ConflictError(
            f"group {body.name!r} already exists: delete it first "
            f"(`parkwatch groups delete {body.name}`) or pick another name"
        )
    row = DeviceGroup(
        name=body.name, selector=dict(body.selector), description=body.description, created_by=who
    )
    session.add(row)
    audit.record(session, who, "group.create", f"group:{body.name}", selector=row.selector)
    session.commit()
    return row


def get_group(session: Session, name: str) -> DeviceGroup:
    row = session.get(DeviceGroup, name)
    if row is None:
        raise NotFoundError(
            f"no device group {name[:64]!r}: create it with "
            "`parkwatch groups create NAME --selector key=value`"
        )
    return row


def delete_group(session: Session, name: str, *, who: str) -> None:
    row = get_group(session, name)
    session.delete(row)
    audit.record(session, who, "group.delete", f"group:{name}", selector=row.selector)
    session.commit()


def member_count(session: Session, row: DeviceGroup) -> int:
    count = select(func.count()).select_from(Device).where(*selector_conditions(row.selector))
    return session.exec(count).one()


def group_public(session: Session, row: DeviceGroup) -> GroupPublic:
    return GroupPublic(
        name=row.name,
        selector=row.selector,
        description=row.description,
        device_count=member_count(session, row),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def list_groups(session: Session, *, limit: int, offset: int) -> tuple[list[GroupPublic], int]:
    total = session.exec(select(func.count()).select_from(DeviceGroup)).one()
    rows = session.exec(
        select(DeviceGroup).order_by(col(DeviceGroup.name)).offset(offset).limit(limit)
    ).all()
    return [group_public(session, r) for r in rows], total
