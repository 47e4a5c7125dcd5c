"""What ``serve`` checks before it starts anything, so that a fault is one line naming the
fix instead of tracebacks from inside uvicorn's lifespan: the data folder, the store (it
migrates it), the artifact store (a bucket must answer), the ports it would bind, and the
broker it would connect to.

A broker that does not answer is not fatal (the control plane retries and /healthz says
503 meanwhile): it is logged at once, with the fix.
"""

from __future__ import annotations

import errno
import logging
import socket
import uuid
from pathlib import Path

from protocols.reach import explain_connect_error, probe_tcp
from protocols.urls import parse_mqtt_url

from ..config import ControlPlaneSettings
from ..errors import ConfigError
from ..store import db
from ..store.open_artifacts import open_artifact_store

log = logging.getLogger(__name__)
BROKER_PROBE_S = 3.0


def preflight(settings: ControlPlaneSettings) -> None:
    """Raise ConfigError for what would stop ``serve``; log what would only degrade it."""
    writable(settings.data_dir, "data_dir (PARKWATCH_DATA_DIR)")
    db.upgrade(settings.resolved_database_url)
    if settings.role != "ingest":
        open_artifact_store(settings)
        port_free(settings.host, settings.port, "the HTTP API",
                  "stop what holds it or set port (PARKWATCH_PORT)")
    if settings.mqtt_url is None:
        if settings.role == "all":
            port_free(settings.embedded_broker_host, settings.embedded_broker_port,
                      "the embedded MQTT broker",
                      "a broker already runs there (a Mosquitto from scripts/bootstrap.sh?): "
                      f"use it with PARKWATCH_MQTT_URL=mqtt://{settings.embedded_broker_host}:"
                      f"{settings.embedded_broker_port}, or set embedded_broker_port")
        return
    url = parse_mqtt_url(settings.mqtt_url)
    error = probe_tcp(url.host, url.port, BROKER_PROBE_S)
    if error is not None:
        log.warning("%s; serving anyway and retrying: /healthz answers 503 until it connects",
                    explain_connect_error(error, "the broker", url.host, url.port,
                                          "mqtt_url (PARKWATCH_MQTT_URL)"))


def writable(folder: Path, setting: str) -> None:
    """Create ``folder`` if needed and write a file in it, or raise ConfigError."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-check-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{setting} {folder} is not writable ({exc.strerror or exc}): create it and give "
            f"the service's user ownership, or point {setting.split()[0]} elsewhere") from None


def port_free(host: str, port: int, what: str, fix: str) -> None:
    """Bind ``host:port`` and let go, or raise ConfigError naming ``what`` needed it."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {host}:{port} for {what} is taken: {fix}") from None
            raise ConfigError(f"cannot listen on {host}:{port} for {what} "
                              f"({exc.strerror or exc}): {fix}") from None
