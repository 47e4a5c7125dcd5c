"""Settings of the control plane's processes (``parkwatch serve``, ``worker``): the top-level
keys of the config file, and one table per section (``[drift]``, ``[retention]``,
``[worker]``, ``[rollout_policy]``), each defined in its own module here."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    SettingsConfigDict,
)

from protocols.urls import parse_mqtt_url

from ..errors import ConfigError
from .artifact_store import ArtifactStoreKeys
from .drift import DriftSettings
from .ingest import IngestKeys
from .loader import TomlSettings
from .release_gate import ReleaseGateSettings
from .retention import RetentionSettings
from .rollout_policy import RolloutPolicy
from .worker import WorkerSettings

ADMIN_TOKEN_FILE = "admin.token"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Role = Literal["all", "api", "ingest"]
DEFAULT_CLIENT_ID = "parkwatch-control-plane"
# Keys the operator CLI reads from the same file; the server accepts and ignores them.
_CLIENT_KEYS = frozenset({"api_url", "api_token"})


@dataclass(frozen=True)
class MqttSecurity:
    """Broker login and TLS files; unset fields fall back to the URL and system defaults."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


class ControlPlaneSettings(TomlSettings, ArtifactStoreKeys, IngestKeys):
    """Everything ``parkwatch serve`` needs; one object, validated once at start-up (the
    artifact store's keys come from ``ArtifactStoreKeys``, ingest's from ``IngestKeys``)."""

    model_config = SettingsConfigDict(env_prefix="PARKWATCH_", extra="forbid")
    settings_name: ClassVar[str] = "control-plane settings"

    data_dir: Path = Field(
        Path("./.parkwatch"),
        description="Folder for the SQLite store, artifacts, signing keys and admin.token.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store, e.g. postgresql+psycopg://user@host/db; "
        "unset: SQLite at <data_dir>/parkwatch.db.",
    )
    mqtt_url: str | None = Field(
        None,
        description="Broker the control plane talks to: mqtt://[user:pass@]host[:port] or "
        "mqtts://...; unset: start an embedded amqtt broker in-process.",
    )
    public_mqtt_url: str | None = Field(
        None,
        description="Broker URL written into agent config files; unset: mqtt_url, or the "
        "embedded broker's address.",
    )
    mqtt_client_id: str = Field(
        DEFAULT_CLIENT_ID,
        description="MQTT client id; the broker keeps this persistent session's QoS 1 "
        "messages while the control plane is down. Unique per control-plane process and "
        "the same across its restarts; role=ingest with the default claims a stable "
        "per-host slot id (docs/operations.md, scaling ingest workers).",
    )
    mqtt_username: str | None = Field(
        None, description="Broker username of this process; overrides one in mqtt_url."
    )
    mqtt_password: SecretStr | None = Field(
        None,
        description="Broker password; overrides one in mqtt_url (`parkwatch mqtt acl` "
        "prints the service account's).",
    )
    mqtt_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that signed the broker's certificate (mqtts://); unset: "
        "the system trust store.",
    )
    mqtt_client_cert: Path | None = Field(
        None, description="PEM client certificate for mutual TLS (with mqtt_client_key)."
    )
    mqtt_client_key: Path | None = Field(None, description="PEM key of mqtt_client_cert.")
    mqtt_device_credentials: bool = Field(
        False,
        description="Put a per-device broker username/password into each provisioned agent "
        "config (derived from <data_dir>/mqtt/credentials.key); run `parkwatch mqtt acl` "
        "after adding devices so the broker knows them.",
    )
    embedded_broker_host: str = Field(
        "127.0.0.1", description="Listen address of the embedded broker (when mqtt_url is unset)."
    )
    embedded_broker_port: int = Field(
        1883, ge=1, le=65535, description="Listen port of the embedded broker."
    )
    host: str = Field("127.0.0.1", description="Listen address of the HTTP API.")
    port: int = Field(8000, ge=1, le=65535, description="Listen port of the HTTP API.")
    public_url: str | None = Field(
        None,
        description="URL agents download manifests and artifacts from; unset: http://host:port.",
    )
    artifact_dir: Path | None = Field(
        None, description="Content-addressed artifact folder of artifact_store = folder; unset: "
        "<data_dir>/artifacts."
    )
    max_artifact_bytes: int = Field(
        2 * 1024**3, gt=0, description="Largest artifact upload accepted, in bytes."
    )
    log_level: LogLevel = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
    auth_failure_limit: int = Field(
        20,
        ge=1,
        description="Authentication failures (missing, unknown or revoked token) one client "
        "address may make within auth_failure_window_seconds before it gets 429.",
    )
    auth_failure_window_seconds: float = Field(
        60.0, gt=0, le=86400, description="Sliding window of auth_failure_limit, in seconds."
    )
    # 0 by default: an operator who revokes a token, on the store or through any replica,
    # expects the next call with it refused; a large fleet's API may trade seconds of that
    # for one round trip a call.
    auth_cache_seconds: float = Field(
        0.0,
        ge=0,
        le=300,
        description="How long an API process trusts a token it verified before it reads the "
        "token's row again, in seconds. A revocation through the same process applies at "
        "once; one through another API replica or the CLI within this time. 0 (default): read "
        "at every call, so every revocation applies at once.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Addresses or CIDR networks of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto headers are believed (e.g. [\"10.0.0.5\"]); from any other peer "
        "they are ignored, so the log and the failure limit see the real peer. Empty: none.",
    )
    max_request_body_bytes: int = Field(
        1024**2,
        ge=1024,
        description="Largest request body of a JSON route, in bytes (413 beyond; artifact "
        "uploads have max_artifact_bytes, sample uploads room for one image).",
    )
    sample_uploads_per_hour: int = Field(
        120,
        ge=1,
        description="Sample uploads one device token may make per hour (429 with Retry-After "
        "beyond; a burst of up to a tenth of it, at least 5, is allowed at once).",
    )
    mqtt_max_queued_messages: int = Field(
        10_000,
        ge=10,
        le=1_000_000,
        description="Most QoS 1 messages this process's MQTT client holds on their way to "
        "the broker (in flight included). A desired state takes two (signed and plain): a "
        "larger wave waits for room and is sent in turn, never dropped.",
    )
    role: Role = Field(
        "all",
        description="What this process does: all (HTTP API + MQTT ingest, one process), api "
        "(HTTP only; publishes desired states, no subscriptions) or ingest (MQTT ingest only).",
    )
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of a Prometheus /metrics listener for role=ingest (no HTTP API "
        "there); unset: none. The API roles serve /metrics on the API port.",
    )
    drift: DriftSettings = Field(
        default_factory=DriftSettings,
        description="Drift analysis and alerts (the [drift] table): interval, sliding range, "
        "per-feature thresholds, K-of-N windows on M devices, webhook.",
    )
    worker: WorkerSettings = Field(
        default_factory=WorkerSettings,
        description="`parkwatch worker` (the [worker] table): retraining triggers, dataset, "
        "held-out data, win margin, trainer command, shadow targets, promotion policy.",
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings,
        description="Telemetry retention (the [retention] table): when old windows are "
        "merged into coarser ones and when they are deleted.",
    )

    release_gate: ReleaseGateSettings = Field(
        default_factory=ReleaseGateSettings,
        description="What a model version's evaluation must show before `releases create` "
        "signs it (the [release_gate] table): the trainer's gate, minimum metrics, per model.",
    )

    rollout_tick_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="How often the rollout engine advances rollouts in progress (deadlines, "
        "waves, gates), in seconds; 0: no engine in this process (roles all and api run it).",
    )
    fleet_counts_max_age_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="How long the dashboard's fleet figures (devices, online, cameras, "
        "releases: one pass over the device table) are reused before they are counted again, "
        "in seconds; the page shows their age, at most twice this. 0: count at every request.",
    )
    clock_skew_alert_seconds: float = Field(
        120.0,
        ge=0,
        description="Alert on a device whose clock is off by more than this many seconds "
        "(measured when its `online` arrives; checked with each drift analysis run); 0: never. "
        "Deadlines and ordering use the control plane's clock whatever the skew.",
    )
    rollout_policy: RolloutPolicy = Field(
        default_factory=RolloutPolicy,
        description="Default rollout policy (the [rollout_policy] table): waves, "
        "max_devices_per_minute, approval_after_wave, shadow_phase, shadow_fraction, "
        "on_gate_failure, spread_label and [rollout_policy.gates]; `rollouts start` options "
        "override it.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        import sqlalchemy as sa

        hint = "use sqlite:///path/to/parkwatch.db or postgresql+psycopg://user@host/db"
        try:  # the value is never echoed: it may hold a password
            backend = sa.make_url(value).get_backend_name()
        except sa.exc.ArgumentError:
            raise ValueError(f"not a database URL: {hint}") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"unsupported database {backend!r}: {hint}")
        return value

    @field_validator("mqtt_url", "public_mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mqtt_url(value)  # its ProtocolError is a ValueError: the error names the key
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.5 or "
                    "10.0.0.0/24)"
                ) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _drop_client_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in _CLIENT_KEYS}
        return data

    @model_validator(mode="after")
    def _split_roles_need_a_broker(self) -> Self:
        if self.role != "all" and not self.mqtt_url:
            raise ValueError(
                f"role={self.role} runs beside other processes and needs a shared broker: "
                "set mqtt_url (the embedded broker is for role=all only)"
            )
        return self

    def mqtt_security(self) -> MqttSecurity:
        """Credentials and TLS files for this process's broker connection."""
        if (self.mqtt_client_cert is None) != (self.mqtt_client_key is None):
            raise ConfigError("mqtt_client_cert and mqtt_client_key go together: set both")
        for path in (self.mqtt_ca_file, self.mqtt_client_cert, self.mqtt_client_key):
            if path is not None and not path.is_file():
                raise ConfigError(f"MQTT TLS file {path} does not exist")
        return MqttSecurity(
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            ca_file=self.mqtt_ca_file,
            client_cert=self.mqtt_client_cert,
            client_key=self.mqtt_client_key,
        )

    def control_lane_security(self) -> MqttSecurity | None:
        """The control lane's login; None: ingest on one connection (the lane is off, or
        this process logs in to the broker and the lane has no account of its own: under
        use_username_as_clientid one account's two connections would oust each other)."""
        if not self.ingest_control_lane:
            return None
        main = self.mqtt_security()
        if self.mqtt_control_username is None:
            logs_in = main.username or parse_mqtt_url(self.broker_url).username
            return None if logs_in else main
        password = self.mqtt_control_password
        return dataclasses.replace(main, username=self.mqtt_control_username,
                                   password=password.get_secret_value() if password else None)

    def client_id_for_role(self) -> str:
        """The MQTT client id: as configured, except that the default gets a per-process
        suffix in split roles, so two workers never take over each other's session."""
        if self.role == "all" or self.mqtt_client_id != DEFAULT_CLIENT_ID:
            return self.mqtt_client_id
        return f"{self.mqtt_client_id}-{self.role}-{socket.gethostname()[:32]}-{os.getpid()}"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'parkwatch.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def resolved_artifact_dir(self) -> Path:
        return self.artifact_dir if self.artifact_dir is not None else self.data_dir / "artifacts"

    @property
    def broker_url(self) -> str:
        """The URL the control plane itself connects to."""
        if self.mqtt_url:
            return self.mqtt_url
        return f"mqtt://{self.embedded_broker_host}:{self.embedded_broker_port}"

    @property
    def agent_mqtt_url(self) -> str:
        """The broker URL agents are told to use."""
        return self.public_mqtt_url or self.broker_url

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / ADMIN_TOKEN_FILE
