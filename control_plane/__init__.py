"""The parkwatch control plane: registry, signed releases, rollouts and telemetry ingest.

Layout (each role in one obvious place):

- ``config``: the one settings object (``ControlPlaneSettings``) and the CLI's ``ClientSettings``
- ``models`` (tables) / ``schemas`` (API bodies) / ``db`` (engine, sessions, migrations)
- ``services``: the domain layer; knows nothing of HTTP or MQTT
- adapters at the edge: ``api`` (FastAPI), ``mqtt`` (paho), ``broker`` (embedded amqtt),
  ``cli`` (Typer), ``artifacts`` (content store), ``keys`` (signing keyring)
"""

from .errors import (
    AuthError,
    ConfigError,
    ConflictError,
    ControlPlaneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "ControlPlaneError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
]
