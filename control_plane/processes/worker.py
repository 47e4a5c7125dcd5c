"""``parkwatch worker``: the continuous-training process beside ``parkwatch serve``.

Every ``worker.poll_interval_s`` it runs one round of ``retraining.jobs``: triggers into
jobs, then the oldest queued job. It publishes desired states (the shadow rollouts it
starts) through its own MQTT connection."""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config import ControlPlaneSettings
from ..errors import ControlPlaneError
from ..lifecycle import PeriodicTask, Services, run_until_signalled
from ..retraining.jobs import WorkerContext, fail_stale_jobs, run_round
from ..rollouts.service import DesiredStatePublisher
from ..store import db
from ..store.keys import Keyring
from ..store.leases import lease_for
from ..store.open_artifacts import open_artifact_store

log = logging.getLogger(__name__)


def worker_context(settings: ControlPlaneSettings, engine: Engine,
                   publisher: DesiredStatePublisher) -> WorkerContext:
    """The store, keys, publisher and API token a round uses."""
    keyring = Keyring(settings.keys_dir)
    keyring.init()
    token = os.environ.get("PARKWATCH_API_TOKEN") or _admin_token(settings)
    return WorkerContext(settings, engine, open_artifact_store(settings),
                         keyring, publisher, token)


def _admin_token(settings: ControlPlaneSettings) -> str:
    try:
        return settings.admin_token_path.read_text().strip()
    except OSError:
        raise ControlPlaneError(
            f"the worker needs an API token for the trainer: set PARKWATCH_API_TOKEN or run "
            f"it where {settings.admin_token_path} exists"
        ) from None


def run_worker(
    settings: ControlPlaneSettings, *, once: bool = False, stop: threading.Event | None = None
) -> None:
    """Check triggers and run queued jobs until SIGTERM/SIGINT (or one round with ``once``)."""
    from ..ingest.adapter import MqttAdapter
    from ..rollouts.desired import signer_for

    db.upgrade(settings.resolved_database_url)
    engine = db.create_db_engine(settings.resolved_database_url)
    services = Services()
    keyring = Keyring(settings.keys_dir)
    keyring.init()
    try:
        publisher = services.start(MqttAdapter(
            settings.broker_url, engine, client_id=f"parkwatch-worker-{os.getpid()}",
            subscribe=False, clean_session=True, security=settings.mqtt_security(),
            signer=signer_for(keyring)))
        if not publisher.wait_connected(10.0):
            log.warning("worker: broker not reachable yet; desired states go out on reconnect")
        ctx = worker_context(settings, engine, publisher)
        with Session(engine, expire_on_commit=False) as session:
            fail_stale_jobs(session, settings.worker.trainer_timeout_s)
        # Rounds run on this thread, so a signal lets the round (and its trainer) finish.
        # Two workers on one PostgreSQL store: one runs rounds, the other stands by.
        rounds = PeriodicTask("retraining", settings.worker.poll_interval_s,
                              lambda: run_round(ctx), run_at_start=True,
                              lease=lease_for(engine, "retraining"))
        if once:
            rounds.run_once()
        else:
            run_until_signalled("worker", stop, main=rounds)
    finally:
        services.stop()
        engine.dispose()


__all__ = ["run_worker", "worker_context"]
