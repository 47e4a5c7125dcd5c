"""What the running app holds (``AppState``), and how its lifespan opens and closes it.

Opening migrates the store, makes sure a signing key and the first admin token exist,
then starts the long-running parts as ``lifecycle`` services, in order: the embedded
broker (when no ``mqtt_url`` is set), the MQTT adapter, the drift analysis and the
rollout engine. Closing stops them in reverse and disposes of the engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from protocols import DesiredState

from ..config import ControlPlaneSettings, MqttSecurity
from ..errors import ConfigError
from ..lifecycle import Services
from ..rollouts.service import DesiredStatePublisher
from ..services import auth, fleet_summary
from ..services.devices import AgentEndpoints
from ..store import db
from ..store.artifacts import ArtifactStore
from ..store.gauges import StoreGauges
from ..store.keys import Keyring
from ..store.leases import lease_for
from ..store.open_artifacts import open_artifact_store
from .fleet_counts import FleetCountsCache
from .ratelimit import AuthFailureLimiter, TokenBuckets
from .token_cache import TokenCache

if TYPE_CHECKING:
    from protocols.topics import TopicKind

    from ..broker.embedded import EmbeddedBroker
    from ..ingest.adapter import MqttAdapter

log = logging.getLogger(__name__)


class UnpublishedDesired:
    """The publisher of an app without MQTT: desired states are stored, not sent."""

    def publish_desired(self, state: DesiredState) -> None:
        log.info(
            "MQTT disabled: desired state stored, not published",
            extra={"device_id": state.device_id, "revision": state.revision},
        )


@dataclass
class AppState:
    """What the running app holds; built by ``open_state`` in the app's lifespan."""

    settings: ControlPlaneSettings
    engine: Engine
    store: ArtifactStore
    keyring: Keyring
    gauges: StoreGauges
    auth_limiter: AuthFailureLimiter
    sample_buckets: TokenBuckets
    fleet_counts: FleetCountsCache
    read_engine: Engine  # the engine's pool, for routes that only read (``deps.reads_only``)
    tokens: TokenCache  # tokens verified in the last auth_cache_seconds
    publisher: DesiredStatePublisher = field(default_factory=UnpublishedDesired)
    services: Services = field(default_factory=Services)
    mqtt: MqttAdapter | None = None  # when MQTT is enabled
    broker: EmbeddedBroker | None = None  # when one runs in-process

    def agent_endpoints(self) -> AgentEndpoints:
        return AgentEndpoints(
            control_plane_url=self.settings.resolved_public_url,
            mqtt_url=self.settings.agent_mqtt_url,
            trusted_public_keys=[p.decode() for p in self.keyring.public_pems().values()],
            mqtt_credentials=(
                self._device_mqtt_login if self.settings.mqtt_device_credentials else None
            ),
        )

    def _device_mqtt_login(self, device_id: str, token_id: int) -> tuple[str, str]:
        from ..broker.acl import device_account, load_secret

        account = device_account(load_secret(self.settings.data_dir), device_id, token_id)
        return account.username, account.password


def open_state(settings: ControlPlaneSettings, enable_mqtt: bool, migrate: bool) -> AppState:
    if settings.role == "ingest":
        raise ConfigError(
            "role=ingest has no HTTP API: run it with `parkwatch serve --role ingest`"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        db.upgrade(settings.resolved_database_url)
    engine = db.create_db_engine(settings.resolved_database_url)
    read_engine = db.statement_by_statement(engine)
    keyring = Keyring(settings.keys_dir)
    keyring.init()
    with db.session_scope(engine) as session:
        auth.bootstrap_admin_token(session, settings.admin_token_path)
    state = AppState(
        settings=settings,
        engine=engine,
        store=open_artifact_store(settings),
        keyring=keyring,
        gauges=StoreGauges(engine),
        auth_limiter=AuthFailureLimiter(
            settings.auth_failure_limit, settings.auth_failure_window_seconds
        ),
        sample_buckets=TokenBuckets(
            settings.sample_uploads_per_hour, max(5, settings.sample_uploads_per_hour // 10)
        ),
        fleet_counts=FleetCountsCache(lambda: _count_fleet(read_engine),
                                      settings.fleet_counts_max_age_seconds),
        read_engine=read_engine,
        tokens=TokenCache(settings.auth_cache_seconds),
    )
    try:
        _start_services(state, enable_mqtt)
    except BaseException:
        close_state(state)
        raise
    return state


def _count_fleet(engine: Engine) -> fleet_summary.FleetCounts:
    with Session(engine) as session:
        return fleet_summary.fleet_counts(session)


def _start_services(state: AppState, enable_mqtt: bool) -> None:
    settings, services = state.settings, state.services
    if enable_mqtt:
        from ..ingest.adapter import INGEST_KINDS, MqttAdapter, republish_desired
        from ..ingest.lanes import start_ingest
        from ..rollouts.desired import signer_for

        if settings.mqtt_url is None:
            from ..broker.embedded import EmbeddedBroker

            state.broker = services.start(EmbeddedBroker(
                settings.embedded_broker_host, settings.embedded_broker_port))
        api_only = settings.role == "api"

        def adapter(client_id: str, kinds: tuple[TopicKind, ...], name: str,
                    security: MqttSecurity, *, subscribe: bool = True) -> MqttAdapter:
            return MqttAdapter(
                settings.broker_url,
                state.engine,
                client_id=client_id,
                share_group=settings.ingest_share_group,
                subscribe=subscribe,
                clean_session=not subscribe,
                # the connection that publishes desired states sends them all again
                on_connected=republish_desired if "status" in kinds else None,
                security=security,
                batch_size=settings.ingest_batch_size,
                linger_s=settings.ingest_linger_seconds,
                max_queued=settings.ingest_max_queued,
                max_queued_messages=settings.mqtt_max_queued_messages,
                signer=signer_for(state.keyring),
                kinds=kinds,
                name=name,
            )

        client_id = settings.client_id_for_role()
        if api_only:  # role=api publishes desired states only
            state.mqtt = services.start(adapter(client_id, INGEST_KINDS, "mqtt",
                                                settings.mqtt_security(), subscribe=False))
        else:
            state.mqtt = start_ingest(services, adapter, client_id,
                                      security=settings.mqtt_security(),
                                      control=settings.control_lane_security())
        state.publisher = state.mqtt
    if settings.drift.analysis_interval_s > 0:
        from ..drift.scheduler import drift_task

        services.start(drift_task(state.engine, settings.drift, settings.retention,
                                  lease=lease_for(state.engine, "drift-analysis"),
                                  clock_skew_alert_s=settings.clock_skew_alert_seconds,
                                  artifacts=state.store))
    if settings.rollout_tick_seconds > 0:
        from ..rollouts.runner import rollout_engine_task

        services.start(rollout_engine_task(
            state.engine, state.publisher, settings.rollout_tick_seconds,
            lease=lease_for(state.engine, "rollout-engine")))


def close_state(state: AppState) -> None:
    state.services.stop()
    state.engine.dispose()
