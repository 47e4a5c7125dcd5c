"""The parkwatch control plane: registry, signed releases, rollouts, ingest, drift, retraining.

The map (docs/architecture.md draws it; each folder's docstring says what lives there):

- ``processes/``: the entry points ``serve``, ingest and ``worker``; only ``cli/`` imports them
- adapters at the edge: ``api/`` (FastAPI routes, ``create_app(settings)``), ``cli/``
  (Typer, one module per command group), ``ingest/`` (the MQTT connection),
  ``broker/`` (embedded broker, Mosquitto ACL, dev certificates)
- the domain: ``services/`` (registry, fleet, alerts, jobs, ...), ``rollouts/`` (waves,
  gates and their state machines), ``drift/`` (analysis), ``retraining/`` (the worker's
  rounds); plain functions over a session, no HTTP and no MQTT
- data: ``store/`` (tables, sessions, migrations, artifacts, signing keys),
  ``schemas/`` (API bodies), ``config/`` (settings, one module per section)
- cross-cutting: ``errors`` (the error hierarchy), ``metrics`` (Prometheus series),
  ``lifecycle`` (start/stop/health of long-running parts, periodic tasks, signals),
  ``testing`` (builders of valid payloads for tests and scripts)

Upper layers import lower ones, never the reverse, and no module imports itself in a
circle (``tests/unit/test_cp_import_graph.py``).
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
