"""``/healthz`` and ``/metrics`` (no token needed)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ...schemas import Health, ServiceHealth
from ..deps import StateDep

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("parkwatch")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "unknown"


@router.get("/healthz", response_model=Health)
def healthz(state: StateDep) -> JSONResponse:
    """``ok`` (200) when the store answers and MQTT (if enabled) is connected; otherwise
    ``degraded`` and 503, so a load balancer or ``systemctl`` probe sees the outage.
    ``services`` tells how each long-running part of this process is doing."""
    database = "ok"
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("health check: database error: %s", exc)
        database = "error"
    if state.mqtt is None:
        mqtt = "disabled"
    else:
        mqtt = "connected" if state.mqtt.connected else "disconnected"
    ok = database == "ok" and mqtt != "disconnected"
    body = Health(
        status="ok" if ok else "degraded",
        version=_version(),
        database=database,  # type: ignore[arg-type]
        mqtt=mqtt,
        embedded_broker=state.broker is not None,
        services={name: ServiceHealth(ok=h.ok, detail=h.detail)
                  for name, h in state.services.health().items()},
    )  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
def metrics(state: StateDep) -> Response:
    """Prometheus text: ingest rates, HTTP latency, MQTT, and gauges read from the store
    (rollout states, devices online, open alerts)."""
    if state.gauges is not None:
        state.gauges.maybe_refresh()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
