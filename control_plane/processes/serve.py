"""``serve(settings)``: run one role of the control plane.

- ``all``: HTTP API, MQTT ingest and (without ``mqtt_url``) an embedded broker, one process;
- ``api``: HTTP API only; publishes desired states, subscribes to nothing;
- ``ingest``: MQTT ingest only (``processes/ingest.py``), no HTTP API.

uvicorn handles SIGINT/SIGTERM and runs the app's shutdown."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from protocols.logs import configure_logging

from ..config import ControlPlaneSettings
from .serve_record import write_record

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


def serve(settings: ControlPlaneSettings) -> None:
    """Raises ConfigError (one line for the CLI) for what ``preflight`` finds wrong."""
    from .preflight import preflight

    configure_logging(settings.log_level)
    preflight(settings)
    if settings.role == "ingest":
        from .ingest import run_ingest

        run_ingest(settings)
        return

    import uvicorn

    from ..api.app import create_app

    app = create_app(settings)
    write_record(settings)  # parkwatch worker checks it shares this broker and store
    config = uvicorn_config(app, settings)
    log.info(
        "control plane starting",
        extra={
            "url": settings.resolved_public_url,
            "data_dir": str(settings.data_dir),
            "role": settings.role,
        },
    )
    uvicorn.Server(config).run()


def uvicorn_config(app: Any, settings: ControlPlaneSettings) -> uvicorn.Config:
    """The HTTP server of ``serve``: forwarded headers are believed from trusted proxies
    only, so a client cannot choose the address the log and the failure limit see."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our structured logging
        log_level=settings.log_level.lower(),
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
        timeout_graceful_shutdown=10,
    )
