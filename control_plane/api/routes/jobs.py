"""``/api/v1/jobs``: training jobs; the trainer reports status and progress with PATCH."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from ...schemas import JobCreate, JobPublic, JobStatus, JobUpdate, Page
from ...services import jobs
from ..deps import OperateDep, PageDep, ReadDep, SessionDep

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Queue a training job")
def create_job(body: JobCreate, session: SessionDep, principal: OperateDep) -> JobPublic:
    return jobs.job_public(jobs.create_job(session, body, who=principal.name))


@router.get("", summary="List training jobs, newest first")
def list_jobs(
    session: SessionDep,
    page: PageDep,
    _p: ReadDep,
    status: JobStatus | None = None,
    model: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[JobPublic]:
    rows, total = jobs.list_jobs(
        session, status=status, model_name=model, limit=page.limit, offset=page.offset
    )
    items = [jobs.job_public(r) for r in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{job_id}", summary="Get one training job")
def get_job(job_id: str, session: SessionDep, _p: ReadDep) -> JobPublic:
    return jobs.job_public(jobs.get_job(session, job_id))


@router.patch("/{job_id}", summary="Report a job's status/progress (the trainer calls this)")
def update_job(
    job_id: str, body: JobUpdate, session: SessionDep, principal: OperateDep
) -> JobPublic:
    return jobs.job_public(jobs.update_job(session, job_id, body, who=principal.name))
