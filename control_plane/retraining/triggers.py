"""Retraining triggers (continuous training): each turns a condition into a training job.

- ``drift`` / ``accuracy``: an unresolved alert of that kind whose release belongs to
  the model; the alert remembers the job (``detail.job_id``), so it triggers once;
- ``new_data``: at least ``worker.new_samples`` labelled samples not yet in a dataset;
- ``schedule``: no job for the model in the last ``worker.schedule_hours``.

At most one queued or running job per model: a trigger that fires while one is
pending attaches to it instead of queueing another.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..config.worker import WorkerSettings
from ..schemas import JobCreate, JobTrigger
from ..services import jobs
from ..store.models import Alert, Release, Sample, TrainingJob, utc_now

log = logging.getLogger(__name__)
WHO = "worker"


def pending_job(session: Session, model_name: str) -> TrainingJob | None:
    return session.exec(
        select(TrainingJob)
        .where(
            col(TrainingJob.model_name) == model_name,
            col(TrainingJob.status).in_(("queued", "running")),
        )
        .order_by(col(TrainingJob.created_at))
    ).first()


def _create(
    session: Session, model_name: str, trigger: JobTrigger, reason: str, **params: object
) -> TrainingJob:
    body = JobCreate(model_name=model_name, trigger=trigger, params={"reason": reason, **params})
    job = jobs.create_job(session, body, who=WHO)
    log.info("retraining triggered", extra={"job_id": job.job_id, "trigger": trigger,
                                            "reason": reason})
    return job


def _alert_model(session: Session, alert: Alert) -> str | None:
    if alert.release_id is None:
        return None
    release = session.get(Release, alert.release_id)
    return release.model_name if release is not None else None


def _from_alerts(session: Session, ws: WorkerSettings) -> list[TrainingJob]:
    kinds = [k for k, on in (("drift", ws.on_drift_alert), ("accuracy", ws.on_accuracy_alert))
             if on]
    created: list[TrainingJob] = []
    alerts = session.exec(
        select(Alert)
        .where(col(Alert.kind).in_(kinds), col(Alert.state) != "resolved")
        .order_by(col(Alert.id))
    ).all()
    for alert in alerts:
        model = _alert_model(session, alert)
        if alert.detail.get("job_id") or model is None:
            continue
        if ws.model_name is not None and model != ws.model_name:
            continue
        job = pending_job(session, model)
        if job is None:
            trigger: JobTrigger = "drift" if alert.kind == "drift" else "accuracy"
            job = _create(session, model, trigger, alert.message, alert_id=alert.id)
            created.append(job)
        alert.detail = {**alert.detail, "job_id": job.job_id}
        session.add(alert)
        session.commit()
    return created


def _from_samples(session: Session, ws: WorkerSettings) -> TrainingJob | None:
    if ws.new_samples <= 0 or ws.model_name is None:
        return None
    count = session.exec(
        select(func.count())
        .select_from(Sample)
        .where(col(Sample.status) == "labelled", col(Sample.dataset_version).is_(None))
    ).one()
    if count < ws.new_samples or pending_job(session, ws.model_name) is not None:
        return None
    return _create(session, ws.model_name, "new_data", f"{count} new labelled samples",
                   samples=count)


def _from_schedule(session: Session, ws: WorkerSettings, now: datetime) -> TrainingJob | None:
    if ws.schedule_hours <= 0 or ws.model_name is None:
        return None
    last = session.exec(
        select(func.max(TrainingJob.created_at)).where(
            col(TrainingJob.model_name) == ws.model_name
        )
    ).one()
    if last is not None and last.tzinfo is None:  # SQLite returns aggregates naive
        last = last.replace(tzinfo=now.tzinfo)
    if last is not None and now - last < timedelta(hours=ws.schedule_hours):
        return None
    if pending_job(session, ws.model_name) is not None:
        return None
    return _create(session, ws.model_name, "schedule", f"every {ws.schedule_hours} h")


def check_triggers(
    session: Session, ws: WorkerSettings, now: datetime | None = None
) -> list[TrainingJob]:
    """Create the jobs that the current state calls for (commits each)."""
    created = _from_alerts(session, ws)
    for job in (_from_samples(session, ws), _from_schedule(session, ws, now or utc_now())):
        if job is not None:
            created.append(job)
    return created


__all__ = ["check_triggers", "pending_job"]
