"""``create_app(settings)``: the FastAPI app, its lifespan and its error mapping.

The lifespan opens the app's state (``state.open_state``: store, keys, the first admin
token, and the long-running services) and closes it. ``enable_mqtt=False`` gives a pure
HTTP app for tests and tools: desired states are stored but not published.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import ControlPlaneSettings
from ..errors import (
    AuthError,
    ConfigError,
    ConflictError,
    ControlPlaneError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)
from ..metrics import HTTP_LATENCY, HTTP_REQUESTS
from ..schemas import ErrorBody
from .bodyguard import BodyGuard
from .routes import (
    alerts,
    aliases,
    artifacts,
    audit,
    datasets,
    dead_letters,
    devices,
    drift,
    drift_accuracy,
    drift_baselines,
    drift_history,
    events,
    fleet,
    groups,
    health,
    jobs,
    keys,
    models,
    park,
    releases,
    rollouts,
    samples,
    snapshots,
    telemetry,
    tokens,
    versions,
    web,
    whoami,
)
from .state import close_state, open_state

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (401, "Missing, unknown or revoked bearer token."),
        (403, "The token lacks the scope this call needs."),
        (404, "No such object."),
        (409, "Clashes with what is stored."),
        (413, "The request body is over this route's limit (the answer names it)."),
        (422, "Invalid request."),
        (429, "Too many bad tokens from this address (a valid token still passes), or a "
              "device over its sample upload rate: wait as Retry-After says."),
    )
}
_STATUS: dict[type[ControlPlaneError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidRequestError: 422,
    AuthError: 401,
    PermissionDeniedError: 403,
    ConfigError: 503,
    StorageError: 503,
}


def create_app(
    settings: ControlPlaneSettings, *, enable_mqtt: bool = True, migrate: bool = True
) -> FastAPI:
    """The control plane's HTTP API; MQTT ingest and the embedded broker run in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = open_state(settings, enable_mqtt, migrate)
        app.state.parkwatch = state
        try:
            yield
        finally:
            close_state(state)

    # /docs and /redoc from assets shipped in the fastapi-offline wheel, not a CDN: an
    # air-gapped site gets a working page.
    app = FastAPIOffline(
        title="parkwatch control plane",
        version="1",
        lifespan=lifespan,
        summary="Model registry, signed releases, rollouts and telemetry for pet-park cameras.",
    )
    _install_error_handlers(app)
    # Inside the metrics middleware (a BaseHTTPMiddleware, whose task group would wrap the
    # guard's 413 in an exception group that FastAPI turns into a 400); it still runs before
    # any route reads a body, and its refusals are counted.
    app.add_middleware(BodyGuard, settings=settings)
    _install_metrics(app)
    app.include_router(health.router)
    for module in (
        artifacts,
        models,
        aliases,
        versions,
        datasets,
        releases,
        keys,
        devices,
        fleet,
        groups,
        rollouts,
        telemetry,
        events,
        drift_accuracy,  # these before drift: /drift/{report_id} would take their paths
        drift_baselines,
        drift_history,
        drift,
        alerts,
        dead_letters,
        jobs,
        tokens,
        audit,
        samples,
        park,
        snapshots,
        whoami,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=ERROR_RESPONSES)
    web.install(app)  # the dashboard: static files under /dashboard, reading /api/v1
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def on_error(_request: Request, exc: Exception) -> Response:
        code = next((c for t, c in _STATUS.items() if isinstance(exc, t)), 400)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)

    async def on_invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ())) or "<request>"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        more = len(exc.errors()) - 5
        if more > 0:
            parts.append(f"and {more} more")
        return JSONResponse({"detail": "invalid request: " + "; ".join(parts)}, status_code=422)

    async def on_store_refused(_request: Request, exc: Exception) -> Response:
        # The validators should stop these first; this keeps an unforeseen value a 4xx.
        log.warning("store refused a request: %s", str(exc).splitlines()[0][:300])
        if isinstance(exc, IntegrityError):
            return JSONResponse(
                {"detail": "conflicts with stored data (a duplicate, or a reference in use)"},
                status_code=409,
            )
        return JSONResponse(
            {"detail": "a value cannot be stored (out of range or not representable)"},
            status_code=422,
        )

    async def on_store_unreachable(_request: Request, exc: Exception) -> Response:
        # Pooled connections are pinged only after idling (store/db.py): the first statement
        # on one the server dropped fails here, and the pool then connects afresh.
        assert isinstance(exc, OperationalError)
        said = next((ln.strip() for ln in str(exc.orig or exc).splitlines() if ln.strip()), "")
        log.warning("store unreachable: %s", said[:300])
        lost = "lost its connection (now replaced)" if exc.connection_invalidated else \
            "could not answer"
        return JSONResponse({"detail": f"the database {lost}: retry the request"},
                            status_code=503, headers={"Retry-After": "1"})

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code != 405:
            return await http_exception_handler(request, exc)
        # Starlette names only the methods of the first route that matched the path; a
        # path served by several routes (GET and POST /devices) needs all of them.
        allowed = sorted(_methods_at(request.app.openapi(), request.url.path))
        if not allowed:  # a route outside the spec (the dashboard, /docs): Starlette's
            return await http_exception_handler(request, exc)
        return JSONResponse(
            {"detail": f"{request.method} is not allowed here: use {', '.join(allowed)}"},
            status_code=405,
            headers={"Allow": ", ".join(allowed)},
        )

    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(ControlPlaneError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(IntegrityError, on_store_refused)
    app.add_exception_handler(DataError, on_store_refused)
    app.add_exception_handler(OperationalError, on_store_unreachable)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _methods_at(spec: dict[str, Any], path: str) -> set[str]:
    """Every method the OpenAPI spec lists for a template matching ``path``."""
    found: set[str] = set()
    for template, item in spec.get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found |= {m.upper() for m in item if m in _HTTP_METHODS}
    return found


def _install_metrics(app: FastAPI) -> None:
    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - start)
        return response
