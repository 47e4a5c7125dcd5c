"""``parkwatch serve --role ingest``: an MQTT ingest worker without the HTTP API.

Several workers share the fleet's telemetry through an MQTT shared subscription
(``ingest_share_group`` -> ``$share/<group>/parkwatch/v1/devices/+/...``): the broker
hands each message to one of them, and the store's unique (device_id, seq) keys keep
ingest exactly-once even when a device re-sends. Each worker needs its own MQTT client
id (``mqtt_client_id``; the default gets a per-process suffix). ``metrics_port``
exposes the worker's Prometheus counters. Windows are written in batches of up to
``ingest_batch_size`` and acknowledged to the broker only once committed (``ingest/batch.py``).
"""

from __future__ import annotations

import logging
import threading

from ..config import ControlPlaneSettings
from ..errors import ConfigError
from ..lifecycle import Services, run_until_signalled
from ..store import db

log = logging.getLogger(__name__)


def run_ingest(settings: ControlPlaneSettings, stop: threading.Event | None = None) -> None:
    """Ingest until SIGTERM/SIGINT (or ``stop`` is set)."""
    from ..ingest.adapter import MqttAdapter
    from ..rollouts.desired import signer_for
    from ..store.keys import Keyring

    if settings.mqtt_url is None:
        raise ConfigError("role=ingest needs mqtt_url: the broker the devices publish to")
    db.upgrade(settings.resolved_database_url)
    engine = db.create_db_engine(settings.resolved_database_url)
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)
    client_id = settings.client_id_for_role()
    services = Services()
    adapter = MqttAdapter(
        settings.broker_url,
        engine,
        client_id=client_id,
        share_group=settings.ingest_share_group,
        security=settings.mqtt_security(),
        batch_size=settings.ingest_batch_size,
        linger_s=settings.ingest_linger_seconds,
        # Where this host holds the signing keys, desired states it re-issues are signed.
        signer=signer_for(Keyring(settings.keys_dir)),
    )
    services.start(adapter)
    log.info(
        "ingest worker started",
        extra={
            "client_id": client_id,
            "share_group": settings.ingest_share_group,
            "metrics_port": settings.metrics_port,
        },
    )
    try:
        run_until_signalled("ingest worker", stop)
    finally:
        services.stop()
        engine.dispose()
        log.info("ingest worker stopped")
