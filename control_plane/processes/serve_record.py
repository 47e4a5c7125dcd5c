"""What a running ``parkwatch serve`` leaves in its data folder for the processes beside it.

At start, the API roles write ``<data_dir>/serve.json``: the broker and the store they
use. ``parkwatch worker`` shares that data folder (signing keys, artifacts), reads the
record, and refuses to publish desired states to another broker or to write another
store (or read another artifact store) than the one serve uses, so a worker started with
other settings says so at once instead of silently talking to a broker no agent listens
on.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocols.urls import parse_mqtt_url, redact_url

from ..config import ControlPlaneSettings
from ..errors import ConfigError
from ..store.db import describe_store

log = logging.getLogger(__name__)
RECORD_FILE = "serve.json"
SETTINGS_FIX = ("give the worker serve's settings: the same --config or PARKWATCH_CONFIG and "
                "PARKWATCH_* variables (docs/settings.md)")


def record_path(settings: ControlPlaneSettings) -> Path:
    return settings.data_dir / RECORD_FILE


def _broker(url: str) -> tuple[str, int, bool]:
    parsed = parse_mqtt_url(url)
    return parsed.host, parsed.port, parsed.tls


def describe_artifacts(settings: ControlPlaneSettings) -> str:
    """The artifact store, as the record and messages name it (no credentials)."""
    if settings.artifact_store == "s3":
        return (f"s3://{settings.s3_bucket}/{settings.s3_prefix} at "
                f"{settings.s3_endpoint_url or 'AWS S3'}")
    return f"folder {settings.resolved_artifact_dir.resolve()}"


def write_record(settings: ControlPlaneSettings) -> Path:
    """Record the broker and store this serve process uses (no passwords)."""
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "broker": redact_url(settings.broker_url),
        "store": describe_store(settings.resolved_database_url),
        "artifacts": describe_artifacts(settings),
        "role": settings.role,
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_record(settings: ControlPlaneSettings) -> dict[str, Any] | None:
    try:
        data = json.loads(record_path(settings).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_beside_serve(settings: ControlPlaneSettings) -> None:
    """Refuse when these settings name another broker or store than serve's record; say
    which broker and store are used either way."""
    broker = redact_url(settings.broker_url)
    store = describe_store(settings.resolved_database_url)
    record = read_record(settings)
    if record is None:
        log.warning("no %s in %s: `parkwatch serve` has not run with this data folder, so "
                    "the worker cannot check that it shares serve's broker (%s) and store (%s)",
                    RECORD_FILE, settings.data_dir, broker, store)
        return
    seen = f"`parkwatch serve` (pid {record.get('pid')}, started {record.get('started_at')})"
    theirs = str(record.get("broker", ""))
    try:
        same_broker = _broker(theirs) == _broker(settings.broker_url)
    except ValueError:
        same_broker = False
    if not same_broker:
        raise ConfigError(f"the worker would use broker {broker}, but {seen} uses {theirs}: "
                          f"{SETTINGS_FIX}")
    if record.get("store") != store:
        raise ConfigError(f"the worker would use store {store}, but {seen} uses "
                          f"{record.get('store')}: {SETTINGS_FIX}")
    artifacts = describe_artifacts(settings)
    if record.get("artifacts", artifacts) != artifacts:  # a record from before has none
        raise ConfigError(f"the worker would use artifacts in {artifacts}, but {seen} uses "
                          f"{record.get('artifacts')}: {SETTINGS_FIX}")
    log.info("worker beside serve: broker %s, store %s, artifacts in %s", broker, store,
             artifacts)


__all__ = ["RECORD_FILE", "check_beside_serve", "read_record", "write_record"]
