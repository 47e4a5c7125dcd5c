"""``/api/v1/datasets``: dataset versions the trainer used (lineage targets)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from ...schemas import DatasetVersionCreate, DatasetVersionPublic, Page
from ...services import datasets
from ..deps import OperateDep, PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a dataset version")
def register_dataset(
    body: DatasetVersionCreate, session: SessionDep, principal: OperateDep
) -> DatasetVersionPublic:
    return datasets.dataset_public(datasets.register_dataset(session, body, who=principal.name))


@router.get("", summary="List dataset versions, newest first")
def list_datasets(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    name: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[DatasetVersionPublic]:
    rows, total = datasets.list_datasets(session, name=name, limit=page.limit, offset=page.offset)
    items = [datasets.dataset_public(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{name}/{version}", summary="Get one dataset version")
def get_dataset(name: str, version: str, session: SessionDep, _p: ReadDep) -> DatasetVersionPublic:
    return datasets.dataset_public(datasets.get_dataset(session, name, version))
