"""Agent settings: one class on the shared settings toolkit (``protocols.settings``).

Environment variables (prefix ``PARKWATCH_AGENT_``) win over the TOML file.
Everything is validated once, at start-up, and errors name the bad key and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from protocols import ProtocolError, check_device_id, load_public_key, load_trusted_keys
from protocols.settings import TomlSettings
from protocols.signing import key_id_of
from protocols.urls import parse_mqtt_url

from .camera_config import CameraConfig as CameraConfig  # re-exported: the settings API
from .errors import ConfigError


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class MqttTarget:
    """The broker to connect to: the parsed ``mqtt_url`` (``protocols.urls``), with the
    TLS files and credentials from the settings."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None = field(default=None, repr=False)  # never in a log line
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None


class AgentSettings(TomlSettings):
    """Everything the edge agent needs (`parkwatch agent run --config agent.toml`)."""

    model_config = SettingsConfigDict(
        env_prefix="PARKWATCH_AGENT_", extra="forbid", frozen=True, validate_default=True
    )
    config_error: ClassVar[type[Exception]] = ConfigError
    settings_name: ClassVar[str] = "agent config"

    device_id: str = Field(description="This device's id; names its MQTT topics.")
    control_plane_url: str = Field(
        description="Base URL of the control plane, e.g. http://10.0.0.1:8000."
    )
    api_token: SecretStr = Field(description="Device bearer token for manifests and artifacts.")
    mqtt_url: str = Field(description="Broker URL: mqtt://[user:password@]host[:port] or mqtts://.")
    mqtt_username: str | None = Field(
        default=None, description="Broker username; overrides one in mqtt_url (default: none)."
    )
    mqtt_password: SecretStr | None = Field(
        default=None, description="Broker password; overrides one in mqtt_url."
    )
    mqtt_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle that signed the broker's certificate (mqtts://); "
        "unset: the system trust store.",
    )
    mqtt_client_cert: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS (needs mqtt_client_key)."
    )
    mqtt_client_key: Path | None = Field(
        default=None, description="PEM private key of mqtt_client_cert."
    )
    data_dir: Path = Field(
        default=Path("/var/lib/parkwatch-agent"),
        description="Where releases, the active pointer and the outbox live.",
    )
    trusted_public_keys: list[str] = Field(
        default=[], description="Inline PEM Ed25519 public keys trusted to sign releases."
    )
    trusted_key_files: list[Path] = Field(
        default=[], description="Files holding PEM Ed25519 public keys trusted to sign releases."
    )
    cameras: list[CameraConfig] = Field(default=[], description="The cameras this device reads.")
    intra_op_threads: Annotated[int, Field(ge=1, le=256)] = Field(
        default_factory=_default_threads, description="ONNX Runtime intra-op threads."
    )
    window_seconds: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=60.0,
        description="Telemetry window length. When not set here, the desired state's "
        "settings.window_seconds applies.",
    )
    outbox_max_rows: Annotated[int, Field(ge=10)] = Field(
        default=10_000,
        description="Rows kept while the broker is away; the oldest are dropped beyond this.",
    )
    outbox_max_bytes: Annotated[int, Field(ge=32 * 1024)] | None = Field(
        default=None,
        description="Disk cap of the outbox in bytes (database and journal together); when "
        "it (or the disk) is full the oldest rows are dropped and reported. Unset: "
        "outbox_max_rows only.",
    )
    outbox_resend_seconds: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=120.0,
        description="Rows the broker acknowledged are kept this long and sent again after a "
        "reconnect: a broker that crashes loses what it acknowledged since its last save. "
        "Keep it above the broker's autosave_interval plus twice mqtt_keepalive_seconds. "
        "0: delete on acknowledgement.",
    )
    mqtt_keepalive_seconds: Annotated[int, Field(ge=2, le=3600)] = Field(
        default=30,
        description="MQTT keepalive. The broker publishes the agent's Last Will (offline) "
        "after 1.5 times this without a word from it (a power cut, a cable pulled).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level."
    )
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="Serve /healthz and Prometheus /metrics on this port; "
        "unset = off."
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Address /healthz and /metrics bind to."
    )
    http_timeout_seconds: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Timeout of each HTTP request to the control plane."
    )
    shutdown_flush_seconds: Annotated[float, Field(ge=0)] = Field(
        default=5.0, description="On shutdown, how long to keep delivering the outbox."
    )
    detection_min_confidence: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.6, description="Top-class confidence needed for a detection."
    )
    detection_persist_frames: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=3, description="Consecutive inferences a label must hold to raise one event."
    )
    rollback_after_errors: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=5,
        description="Consecutive frames on which the active model raises or outputs NaN/inf "
        "before it is rolled back to the previous verified release.",
    )
    upload_samples: bool = Field(
        default=False,
        description="Upload a rate-limited sample of low-confidence frames (JPEG) for "
        "labelling. When not set here, the desired state's settings.upload_samples applies.",
    )
    sample_confidence_below: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.6, description="Frames whose top-class confidence is below this are sampled."
    )
    sample_max_per_hour: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=30, description="At most this many sample uploads per hour (token bucket)."
    )
    negative_max_per_hour: Annotated[int, Field(ge=0, le=3600)] = Field(
        default=6,
        description="With upload_samples on, at most this many candidate negatives per hour "
        "(regions mode): crops of the camera's own background and distractors the model "
        "called no animal, for an operator to confirm as 'other' (0: none). Two thirds "
        "go to distractors (rejected crops, tracks that never became animals), one third "
        "to the empty scene.",
    )
    sample_jpeg_quality: Annotated[int, Field(ge=30, le=100)] = Field(
        default=85, description="JPEG quality of uploaded samples."
    )
    detection_ignore_labels: list[str] = Field(
        default=["empty", "background", "none"],
        description="Labels that never raise detection events (they still count in telemetry); "
        "in regions mode they mean 'no animal', like the release's background_labels.",
    )
    previous_protocol: bool = Field(
        default=False,
        description="Send only what a control plane of the previous protocol version reads: "
        "windows without mode, condition, region, animal and dropped-event fields, status "
        "without a session, and a track's appearance as a detection event. For a rollout "
        "that updates agents before the control plane.",
    )

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        try:
            return check_device_id(value)
        except ProtocolError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("control_plane_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    @field_validator("trusted_public_keys")
    @classmethod
    def _pems(cls, value: list[str]) -> list[str]:
        for i, pem in enumerate(value):
            try:
                load_public_key(pem.encode())
            except ProtocolError as exc:
                raise ValueError(f"entry {i}: {exc}") from None
        return value

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, value: list[CameraConfig]) -> list[CameraConfig]:
        ids = [c.camera_id for c in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera_id must be unique, repeated: {dupes}")
        return value

    # -- derived ---------------------------------------------------------------------
    @model_validator(mode="after")
    def _tls_files(self) -> AgentSettings:
        if (self.mqtt_client_cert is None) != (self.mqtt_client_key is None):
            raise ValueError("mqtt_client_cert and mqtt_client_key go together: set both or none")
        for name in ("mqtt_ca_file", "mqtt_client_cert", "mqtt_client_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: {path} does not exist")
        tls_files = self.mqtt_ca_file or self.mqtt_client_cert
        if tls_files and not parse_mqtt_url(self.mqtt_url).tls:
            raise ValueError("TLS files are set but mqtt_url is not mqtts://: use mqtts://")
        return self

    @property
    def mqtt(self) -> MqttTarget:
        url = parse_mqtt_url(self.mqtt_url)
        return MqttTarget(
            host=url.host,
            port=url.port,
            tls=url.tls,
            username=self.mqtt_username or url.username,
            password=(
                self.mqtt_password.get_secret_value() if self.mqtt_password else url.password
            ),
            ca_file=self.mqtt_ca_file,
            client_cert=self.mqtt_client_cert,
            client_key=self.mqtt_client_key,
        )

    def trusted_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every trusted public key by key id (inline PEMs and key files)."""
        keys: dict[str, Ed25519PublicKey] = {}
        for pem in self.trusted_public_keys:
            key = load_public_key(pem.encode())
            keys[key_id_of(key)] = key
        try:
            keys.update(load_trusted_keys(list(self.trusted_key_files)))
        except ProtocolError as exc:
            raise ConfigError(f"trusted_key_files: {exc}") from None
        return keys


def load_settings(path: Path | None = None, **overrides: object) -> AgentSettings:
    """Read the TOML file (if any) and the environment; raise ConfigError naming the key."""
    return AgentSettings.load(path, **overrides)
