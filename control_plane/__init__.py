"""The parkwatch control plane: registry, signed releases, rollouts, ingest, drift, retraining.

The map (docs/architecture.md draws it; each folder's docstring says what lives there):

- ``processes/``: the entry points ``serve``, ingest and ``worker``; nothing imports them
- adapters at the edge: ``api/`` (FastAPI routes, ``create_app(settings)``), ``cli/``
  (Typer, one module per command group), ``ingest/`` (the MQTT connection),
  ``broker/`` (embedded broker, Mosquitto ACL, dev certificates)
- the domain: ``services/`` (registry, fleet, alerts, jobs, ...), ``rollouts/`` (waves,
  gates and their state machines), ``drift/`` (analysis), ``retraining/`` (the worker's
  rounds); plain functions over a session, no HTTP and no MQTT
- data: ``store/`` (tables, sessions, migrations, artifacts, signing keys),
  ``schemas/`` (API bodies), ``config/`` (settings, one module per section)
- cross-cutting: ``errors`` (the error hierarchy), ``metrics`` (Prometheus series),
  ``testing`` (builders of valid payloads for tests and scripts)
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
