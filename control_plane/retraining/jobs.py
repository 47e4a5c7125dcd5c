"""One round of continuous training (``parkwatch worker`` runs one every
``worker.poll_interval_s``): triggers become jobs (``triggers``), then the oldest queued
job runs:

1. build the next dataset version: the previous one the worker built (first time:
   ``worker.dataset_dir``) plus new labelled samples (a hash-picked share held out),
   with provenance (``services.datasets``);
2. run the trainer through its public CLI as a subprocess; it reports progress to
   the job and registers the new version over the HTTP API;
3. score the challenger and the champion on the same held-out data (the held-out
   folder plus the held-out samples) with ONNX Runtime (``evaluation``);
4. if the challenger wins by ``worker.win_margin``: alias it ``challenger``, sign a
   release and start a rollout whose first phase is shadow mode. Promotion then
   follows ``worker.promotion`` (a human approval by default).

The outcome is written to the job (``params.comparison``) and the audit log.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ..config import ControlPlaneSettings
from ..errors import ControlPlaneError, NotFoundError
from ..rollouts import service as rollouts
from ..rollouts.service import DesiredStatePublisher
from ..schemas import JobUpdate
from ..services import aliases, audit, datasets, jobs, registry, releases
from ..store.artifacts import ArtifactStore
from ..store.keys import Keyring
from ..store.models import ModelVersion, TrainingJob, utc_now
from . import evaluation
from .triggers import WHO, check_triggers

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: ControlPlaneSettings
    engine: Engine
    store: ArtifactStore
    keyring: Keyring
    publisher: DesiredStatePublisher
    token: str

    @property
    def jobs_dir(self) -> Path:
        return self.settings.data_dir / "jobs"


def next_queued(session: Session) -> TrainingJob | None:
    return session.exec(
        select(TrainingJob)
        .where(col(TrainingJob.status) == "queued")
        .order_by(col(TrainingJob.created_at))
    ).first()


def _fail(ctx: WorkerContext, job_id: str, message: str) -> None:
    with Session(ctx.engine, expire_on_commit=False) as session:
        job = jobs.get_job(session, job_id)
        if job.status not in jobs.FINAL:
            jobs.update_job(session, job_id, JobUpdate(status="failed", message=message[:1024]),
                            who=WHO)
    log.warning("job failed", extra={"job_id": job_id, "reason": message[:300]})


def _champion(session: Session, model_name: str) -> str | None:
    """The champion alias, else the newest version, else None (a first model)."""
    try:
        return aliases.get_alias(session, model_name, "champion").version
    except NotFoundError:
        pass
    try:
        return registry.get_version(session, model_name, None).version
    except NotFoundError:
        return None


def _spec(session: Session, model_name: str, version: str) -> dict[str, Any]:
    row: ModelVersion = registry.get_version(session, model_name, version)
    return dict(row.spec)


def _train(ctx: WorkerContext, job: TrainingJob, data: Path, parent: str | None) -> int:
    ws = ctx.settings.worker
    work = ctx.jobs_dir / job.job_id
    work.mkdir(parents=True, exist_ok=True)
    api_url = ws.api_url or ctx.settings.resolved_public_url
    cmd = [*ws.trainer_command, "--data", str(data), "--out", str(work / "out"),
           "--job-id", job.job_id, "--api-url", api_url, "--model-name", job.model_name,
           "--quiet", *ws.trainer_args]
    if parent is not None:
        cmd += ["--parent-version", parent]
    env = {**os.environ, "PARKWATCH_API_TOKEN": ctx.token}  # not on the command line (ps)
    log.info("trainer starting", extra={"job_id": job.job_id, "data": str(data)})
    with (work / "train.log").open("wb") as out:
        try:
            return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                  timeout=ws.trainer_timeout_s, check=False).returncode
        except subprocess.TimeoutExpired:
            return -1


def _log_tail(ctx: WorkerContext, job_id: str) -> str:
    path = ctx.jobs_dir / job_id / "train.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return text.strip()[-600:]


def run_job(ctx: WorkerContext, job_id: str) -> dict[str, Any]:
    """Run one queued job to the end; returns the comparison recorded on the job."""
    ws = ctx.settings.worker
    with Session(ctx.engine, expire_on_commit=False) as session:
        job = jobs.get_job(session, job_id)
        jobs.update_job(session, job_id, JobUpdate(status="running", stage="dataset",
                                                   message="building the dataset version"),
                        who=WHO)
        version = f"{utc_now():%Y%m%dT%H%M%S}-{job_id[-6:]}"
        previous = datasets.latest_built(session, ws.dataset_name, WHO)
        base_dir = Path(str(previous.source)) if previous else ws.dataset_dir
        base_version = previous.version if previous else ws.base_dataset_version
        try:
            built = datasets.build_with_samples(
                session, ctx.store, name=ws.dataset_name, version=version,
                base_dir=base_dir, base_version=base_version,
                out_root=ctx.settings.data_dir / "datasets", holdout_fraction=ws.holdout_fraction,
                who=WHO)
        except ControlPlaneError as exc:
            session.rollback()
            _fail(ctx, job_id, f"dataset: {exc}")
            return {}
        if built.row.sample_count == 0:
            session.rollback()  # leave the samples for a later version
            _fail(ctx, job_id, "nothing to train on: set worker.dataset_dir or label samples")
            return {}
        job.dataset_version = f"{ws.dataset_name}/{version}"
        session.add(job)
        session.commit()
        parent = _champion(session, job.model_name)
        held = [evaluation.LabelledImage(ctx.store.path(s.image_sha256).read_bytes(),
                                         str(s.label), f"sample:{s.id}") for s in built.held_out]
    rc = _train(ctx, job, built.folder, parent)
    with Session(ctx.engine, expire_on_commit=False) as session:
        job = jobs.get_job(session, job_id)
        if rc != 0 or job.status != "succeeded" or job.result_version is None:
            _fail(ctx, job_id, f"trainer exited {rc}: {_log_tail(ctx, job_id)}")
            return {}
        try:
            outcome = _compare(ctx, session, job, parent, held)
        except ControlPlaneError as exc:  # the version is registered: record why it waits
            session.rollback()
            outcome = {"challenger": job.result_version, "champion": parent, "wins": False,
                       "summary": f"comparison failed, challenger not shadowed: {exc}"}
        job.params = {**job.params, "comparison": outcome}
        job.message = str(outcome["summary"])[:1024]
        job.updated_at = utc_now()
        session.add(job)
        audit.record(session, WHO, "job.compare", f"job:{job_id}", **outcome)
        session.commit()
    log.info("job done", extra={"job_id": job_id, "summary": outcome["summary"]})
    return outcome


def _compare(
    ctx: WorkerContext,
    session: Session,
    job: TrainingJob,
    champion: str | None,
    held: list[evaluation.LabelledImage],
) -> dict[str, Any]:
    ws = ctx.settings.worker
    challenger = str(job.result_version)
    images = [*(evaluation.image_folder(ws.holdout_dir) if ws.holdout_dir else []), *held]
    out: dict[str, Any] = {"challenger": challenger, "champion": champion,
                           "holdout_images": len(images), "held_out_samples": len(held),
                           "margin": ws.win_margin, "promotion": ws.promotion}
    if not images:
        out |= {"wins": False, "summary": "no held-out data: set worker.holdout_dir; "
                "challenger not shadowed"}
        return out
    ch_acc = evaluation.accuracy(ctx.store, _spec(session, job.model_name, challenger), images)
    champ_acc = (evaluation.accuracy(ctx.store, _spec(session, job.model_name, champion), images)
                 if champion is not None and champion != challenger else None)
    wins = champ_acc is None or ch_acc >= champ_acc + ws.win_margin
    out |= {"challenger_accuracy": ch_acc, "champion_accuracy": champ_acc, "wins": wins}
    vs = f"{ch_acc:.3f} vs champion {'none' if champ_acc is None else f'{champ_acc:.3f}'}"
    if not wins:
        out["summary"] = f"challenger v{challenger} lost ({vs}, margin {ws.win_margin})"
        return out
    aliases.set_alias(session, job.model_name, "challenger", challenger, who=WHO)
    release = releases.create_release(session, ctx.keyring, job.model_name, challenger, who=WHO,
                                      store=ctx.store)
    out["release_id"] = release.release_id
    try:
        # The configured [rollout_policy] (waves, gates), shadow first (wave 0), then canary
        # waves; "approval": a human approves the waves after the first active one
        # (`parkwatch rollouts approve`, audited).
        policy = ctx.settings.rollout_policy.model_copy(
            update={"approval_after_wave": 1 if ws.promotion == "approval" else None})
        rollout = rollouts.start_rollout(session, ctx.publisher, release.release_id,
                                         ws.shadow_devices, "active", who=WHO, policy=policy,
                                         shadow_phase=True)
        out["rollout_id"] = rollout.rollout_id
        started = f"shadow rollout {rollout.rollout_id}"
    except ControlPlaneError as exc:
        out["rollout_error"] = str(exc)
        started = f"no rollout: {exc}"
    approval = ("needs approval after the first wave" if ws.promotion == "approval"
                else "promotes on passing gates")
    out["summary"] = (f"challenger v{challenger} wins ({vs}); release {release.release_id}; "
                      f"{started}; promotion {approval}")
    return out


def fail_stale_jobs(session: Session, stale_after_s: float) -> list[str]:
    """Fail running jobs with no report for ``stale_after_s`` (a worker or trainer that died
    mid-run): otherwise they would block their model's triggers for ever."""
    cutoff = utc_now() - timedelta(seconds=stale_after_s)
    stale = session.exec(
        select(TrainingJob).where(
            col(TrainingJob.status) == "running", col(TrainingJob.updated_at) < cutoff
        )
    ).all()
    for job in stale:
        jobs.update_job(session, job.job_id, JobUpdate(
            status="failed", message=f"no progress for {stale_after_s:.0f} s: the worker or "
            "trainer stopped mid-run; the next trigger starts a new job"), who=WHO)
    return [j.job_id for j in stale]


def run_round(ctx: WorkerContext) -> None:
    """One round: triggers, then the oldest queued job. An unexpected error fails that job
    and is logged; the worker keeps running."""
    job_id: str | None = None
    try:
        with Session(ctx.engine, expire_on_commit=False) as session:
            check_triggers(session, ctx.settings.worker)
            job = next_queued(session)
            job_id = job.job_id if job is not None else None
        if job_id is not None:
            run_job(ctx, job_id)
    except Exception as exc:
        log.exception("worker round failed", extra={"job_id": job_id})
        if job_id is not None:
            try:
                _fail(ctx, job_id, f"worker error: {type(exc).__name__}: {exc}")
            except Exception:
                log.exception("could not mark the job failed", extra={"job_id": job_id})


__all__ = ["WorkerContext", "fail_stale_jobs", "next_queued", "run_job", "run_round"]
