"""``parkwatch worker``: the continuous-training process beside ``parkwatch serve``.

Every ``worker.poll_interval_s`` it runs one round of ``retraining.jobs``: triggers into
jobs, then the oldest queued job. It publishes desired states (the shadow rollouts it
starts) through its own MQTT connection."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from sqlmodel import Session

from ..config import ControlPlaneSettings
from ..errors import ControlPlaneError
from ..retraining.jobs import WorkerContext, fail_stale_jobs, run_round
from ..store import db
from ..store.artifacts import LocalContentStore
from ..store.keys import Keyring

log = logging.getLogger(__name__)


def worker_context(settings: ControlPlaneSettings) -> WorkerContext:
    """Open the store, keys and (MQTT) publisher the worker uses."""
    from ..ingest.adapter import MqttAdapter

    db.upgrade(settings.resolved_database_url)
    engine = db.create_db_engine(settings.resolved_database_url)
    keyring = Keyring(settings.keys_dir)
    keyring.init()
    token = os.environ.get("PARKWATCH_API_TOKEN") or _admin_token(settings)
    publisher = MqttAdapter(settings.broker_url, engine,
                            client_id=f"parkwatch-worker-{os.getpid()}", subscribe=False,
                            clean_session=True, security=settings.mqtt_security())
    publisher.start()
    if not publisher.wait_connected(10.0):
        log.warning("worker: broker not reachable yet; desired states go out on reconnect")
    return WorkerContext(settings, engine, LocalContentStore(settings.resolved_artifact_dir),
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
    stop = stop or threading.Event()
    ctx = worker_context(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker stopping", extra={"signal": signum})
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        with Session(ctx.engine, expire_on_commit=False) as session:
            fail_stale_jobs(session, settings.worker.trainer_timeout_s)
        while not stop.is_set():
            run_round(ctx)
            if once:
                break
            stop.wait(settings.worker.poll_interval_s)
    finally:
        getattr(ctx.publisher, "stop", lambda: None)()
        ctx.engine.dispose()
