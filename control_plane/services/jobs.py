"""Training jobs: created by an operator or a retraining trigger; the trainer reports
status and progress back (``PATCH /api/v1/jobs/{id}``). The moves a status report may
make are the table ``states.JOB``.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import ConflictError, InvalidRequestError, NotFoundError
from ..schemas import JobCreate, JobPublic, JobUpdate
from ..store.models import TrainingJob, utc_now
from . import audit
from .states import JOB

FINAL = JOB.final()  # succeeded, failed, cancelled


def create_job(session: Session, body: JobCreate, *, who: str) -> TrainingJob:
    row = TrainingJob(
        job_id=f"job-{secrets.token_hex(6)}",
        model_name=body.model_name,
        trigger=body.trigger,
        status=JOB.initial,
        dataset_version=body.dataset_version,
        params=dict(body.params),
        created_by=who,
    )
    session.add(row)
    audit.record(
        session, who, "job.create", f"job:{row.job_id}", model=body.model_name, trigger=body.trigger
    )
    session.commit()
    return row


def get_job(session: Session, job_id: str) -> TrainingJob:
    row = session.get(TrainingJob, job_id)
    if row is None:
        raise NotFoundError(f"no training job {job_id[:64]!r}: see `parkwatch jobs list`")
    return row


def update_job(session: Session, job_id: str, body: JobUpdate, *, who: str) -> TrainingJob:
    """Apply a status/progress report; a final job refuses changes (409)."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if not changes:
        raise InvalidRequestError("nothing to update: send status, progress, stage or message")
    row = get_job(session, job_id)
    new = body.status or row.status
    event = JOB.event_to(row.status, new) if body.status is not None else None
    if row.status in FINAL or (body.status is not None and event is None):
        raise ConflictError(
            f"job {job_id} is {row.status}; it cannot become {new} "
            "(create a new job to train again)"
        )
    now = utc_now()
    if new == "running" and row.started_at is None:
        row.started_at = now
    if new in FINAL:
        row.finished_at = now
        if new == "succeeded":
            row.progress = 1.0
    if event is not None:
        row.status = JOB.next(row.status, event)
    if body.progress is not None and new not in FINAL:
        row.progress = max(row.progress, body.progress)  # progress never goes back
    for name in ("stage", "message", "result_version"):
        value = getattr(body, name)
        if value is not None:
            setattr(row, name, value)
    row.updated_at = now
    session.add(row)
    audit.record(session, who, "job.update", f"job:{job_id}", **changes)
    session.commit()
    return row


def list_jobs(
    session: Session,
    *,
    status: str | None,
    model_name: str | None,
    limit: int,
    offset: int,
) -> tuple[list[TrainingJob], int]:
    where = []
    if status is not None:
        where.append(col(TrainingJob.status) == status)
    if model_name is not None:
        where.append(col(TrainingJob.model_name) == model_name)
    total = session.exec(select(func.count()).select_from(TrainingJob).where(*where)).one()
    rows = session.exec(
        select(TrainingJob)
        .where(*where)
        .order_by(col(TrainingJob.created_at).desc(), col(TrainingJob.job_id))
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def job_public(row: TrainingJob) -> JobPublic:
    return JobPublic.model_validate(row, from_attributes=True)
