"""``parkwatch serve --role ingest``: an MQTT ingest worker without the HTTP API.

Several workers share the fleet's telemetry through an MQTT shared subscription
(``ingest_share_group`` -> ``$share/<group>/parkwatch/v1/devices/+/...``): the broker
hands each message to one of them, and the store's unique (device_id, instance, seq)
keys keep ingest exactly-once even when a device re-sends. Each worker keeps a
persistent session under a stable client id: ``mqtt_client_id`` as configured, or by
default a slot claimed in ``<data_dir>/ingest-slots`` (``ingest/identity.py``), so a
restarted worker gets what the broker queued for it meanwhile. ``--retire`` ends the
sessions of workers removed for good, storing what was queued for them first.
``metrics_port`` exposes the worker's Prometheus counters. Windows are written in
batches of up to ``ingest_batch_size`` and acknowledged to the broker only once
committed (``ingest/batch.py``); statuses, reported states and events come on a second
connection, ``<client id>-control``, with a writer of their own (``ingest/lanes.py``).
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from protocols.topics import TopicKind

from ..config import ControlPlaneSettings, MqttSecurity
from ..config.server import DEFAULT_CLIENT_ID
from ..errors import ConfigError
from ..ingest import identity
from ..lifecycle import Services, run_until_signalled
from ..store import db

if TYPE_CHECKING:
    from ..ingest.adapter import MqttAdapter

log = logging.getLogger(__name__)
YOUNG_GC = 20_000  # the collector's young-generation threshold in an ingest worker
RETIRE_QUIET_S = 3.0  # a retired session is drained once nothing came for this long
RETIRE_TIMEOUT_S = 120.0


def _adapter(settings: ControlPlaneSettings, engine: Engine, client_id: str, *,
             retire: bool = False, clean_session: bool = False, subscribe: bool = True,
             kinds: tuple[TopicKind, ...] | None = None, name: str = "mqtt",
             security: MqttSecurity | None = None) -> MqttAdapter:
    from ..ingest.adapter import INGEST_KINDS, MqttAdapter
    from ..rollouts.desired import signer_for
    from ..store.keys import Keyring

    return MqttAdapter(
        settings.broker_url,
        engine,
        client_id=client_id,
        share_group=settings.ingest_share_group,
        security=security or settings.mqtt_security(),
        kinds=kinds or INGEST_KINDS,
        name=name,
        batch_size=settings.ingest_batch_size,
        linger_s=settings.ingest_linger_seconds,
        max_queued=settings.ingest_max_queued,
        max_queued_messages=settings.mqtt_max_queued_messages,
        retire=retire,
        clean_session=clean_session,
        subscribe=subscribe,
        # Where this host holds the signing keys, desired states it re-issues are signed.
        signer=signer_for(Keyring(settings.keys_dir)),
    )


def run_ingest(settings: ControlPlaneSettings, stop: threading.Event | None = None) -> None:
    """Ingest until SIGTERM/SIGINT (or ``stop`` is set)."""
    if settings.mqtt_url is None:
        raise ConfigError("role=ingest needs mqtt_url: the broker the devices publish to")
    db.upgrade(settings.resolved_database_url)
    engine = db.create_db_engine(settings.resolved_database_url)
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)
    slot = None
    client_id = settings.mqtt_client_id
    if client_id == DEFAULT_CLIENT_ID:
        base = identity.base_client_id(client_id, settings.data_dir)
        slot = identity.claim_slot(base, slot_folder(settings))
        client_id = slot.client_id
    from ..ingest.lanes import start_ingest

    services = Services()

    def lane(lane_id: str, kinds: tuple[TopicKind, ...], name: str,
             security: MqttSecurity) -> MqttAdapter:
        return _adapter(settings, engine, lane_id, kinds=kinds, name=name, security=security)

    start_ingest(services, lane, client_id, security=settings.mqtt_security(),
                 control=settings.control_lane_security())
    # What start-up made lives as long as the process: out of the collector's sight, a
    # full collection scans what ingest made since (a full collection of the whole heap
    # took 100-150 ms, 40 us a window of a 3,000-window stream; docs/performance.md).
    gc.collect()
    gc.freeze()
    # A young collection every 700 net container allocations ran about 40 times a 400-window
    # batch and, with the older ones it set off, cost 9-11 us a window (what ingest keeps
    # alive is a batch or two; its garbage is mostly freed by reference counting, not
    # cycles). At YOUNG_GC a 5,200-window stream set off none (docs/performance.md).
    gc.set_threshold(YOUNG_GC, *gc.get_threshold()[1:])
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
        if slot is not None:
            slot.release()
        log.info("ingest worker stopped")


def slot_folder(settings: ControlPlaneSettings) -> Path:
    return settings.data_dir / "ingest-slots"


def retire_idle_sessions(settings: ControlPlaneSettings) -> list[str]:
    """End the session of every slot no running worker holds, after storing what the
    broker queued for it; returns their client ids."""
    if settings.mqtt_url is None:
        raise ConfigError("--retire needs mqtt_url: the broker the workers subscribe at")
    if settings.mqtt_client_id != DEFAULT_CLIENT_ID:
        raise ConfigError("--retire ends slot sessions (the default mqtt_client_id); with "
                          "your own mqtt_client_id, retire it with retire_session()")
    from ..ingest.lanes import control_client_id

    base = identity.base_client_id(settings.mqtt_client_id, settings.data_dir)
    slots = identity.idle_slots(base, slot_folder(settings))
    db.upgrade(settings.resolved_database_url)
    engine = db.create_db_engine(settings.resolved_database_url)
    try:
        for slot in slots:
            try:
                retire_session(settings, engine, slot.client_id)
                # and its control lane's (ingest/lanes.py), had it one
                retire_session(settings, engine, control_client_id(slot.client_id),
                               security=settings.control_lane_security())
            finally:
                slot.release()
            (slot_folder(settings) / f"{slot.number}.lock").unlink(missing_ok=True)
    finally:
        engine.dispose()
    return [s.client_id for s in slots]


def retire_session(settings: ControlPlaneSettings, engine: Engine, client_id: str, *,
                   security: MqttSecurity | None = None) -> None:
    """Take over ``client_id``'s persistent session, leave the share group, store and
    acknowledge what was queued for it, then end the session (a clean connect)."""
    adapter = _adapter(settings, engine, client_id, retire=True, security=security)
    adapter.start()
    try:
        if not adapter.wait_connected(30):
            raise ConfigError(f"--retire: no connection to the broker as {client_id}")
        if not identity.wait_quiet(lambda: adapter.last_activity, RETIRE_QUIET_S,
                                   RETIRE_TIMEOUT_S):
            log.warning("session still busy after the timeout; ending it anyway",
                        extra={"client_id": client_id})
    finally:
        adapter.stop()
    # A clean connect under the same id discards the session and its subscriptions.
    ender = _adapter(settings, engine, client_id, clean_session=True, subscribe=False,
                     security=security)
    ender.start()
    try:
        if not ender.wait_connected(30):
            raise ConfigError(f"--retire: no connection to the broker as {client_id}")
    finally:
        ender.stop()
    log.info("ingest session retired", extra={"client_id": client_id})
