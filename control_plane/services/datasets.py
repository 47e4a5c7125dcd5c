"""Dataset versions: what the trainer trained on, by name and version (lineage target)."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import ConflictError, NotFoundError
from ..models import DatasetVersion
from ..schemas_ops import DatasetVersionCreate, DatasetVersionPublic
from . import audit


def register_dataset(session: Session, body: DatasetVersionCreate, *, who: str) -> DatasetVersion:
    if _find(session, body.name, body.version) is not None:
        raise ConflictError(
            f"dataset {body.name} version {body.version} is already registered: "
            "dataset versions are immutable, register a new version"
        )
    row = DatasetVersion(**body.model_dump(), created_by=who)
    session.add(row)
    audit.record(
        session,
        who,
        "dataset.register",
        f"dataset:{body.name}/{body.version}",
        sample_count=body.sample_count,
    )
    session.commit()
    return row


def _find(session: Session, name: str, version: str) -> DatasetVersion | None:
    return session.exec(
        select(DatasetVersion).where(DatasetVersion.name == name, DatasetVersion.version == version)
    ).first()


def get_dataset(session: Session, name: str, version: str) -> DatasetVersion:
    row = _find(session, name, version)
    if row is None:
        raise NotFoundError(
            f"no dataset {name[:64]!r} version {version[:64]!r}: see `parkwatch datasets list`"
        )
    return row


def list_datasets(
    session: Session, *, name: str | None, limit: int, offset: int
) -> tuple[list[DatasetVersion], int]:
    where = [col(DatasetVersion.name) == name] if name is not None else []
    total = session.exec(select(func.count()).select_from(DatasetVersion).where(*where)).one()
    rows = session.exec(
        select(DatasetVersion)
        .where(*where)
        .order_by(col(DatasetVersion.created_at).desc(), col(DatasetVersion.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def dataset_public(row: DatasetVersion) -> DatasetVersionPublic:
    return DatasetVersionPublic.model_validate(row, from_attributes=True)
