"""Request bodies: authentication before a byte is read, and a size limit per route.

FastAPI reads and parses a JSON body before it resolves a route's dependencies, so without
this guard an unauthenticated client could make the server buffer and parse any amount
(36 MiB took about 3 s and 777 MiB). ``BodyGuard`` is a pure ASGI middleware in front of
the routes: a request that carries a body to ``/api/v1`` is authenticated from its headers
first (401/429 with nothing read), a declared ``Content-Length`` over the route's limit is
a 413 at once, and a body that grows past the limit while streaming (chunked) is cut off
with a 413. The principal found is handed to the route's ``require`` dependency, so a
request is still looked up once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import ControlPlaneSettings
from ..errors import AuthError
from ..services.auth import Principal
from ..services.samples import MAX_IMAGE_BYTES
from .deps import bearer_token, check_credentials
from .state import AppState

API_PREFIX = "/api/v1/"
# A registration carries up to 16 golden PNGs of 512 KiB (base64) and a reference profile.
REGISTRATION_BODY_BYTES = 16 * 1024**2
# One base64 JPEG of MAX_IMAGE_BYTES and its predictions.
SAMPLE_BODY_BYTES = (MAX_IMAGE_BYTES * 4) // 3 + 64 * 1024
# A snapshot (protocols.Snapshot): its base64 JPEG is capped at 4 MiB, plus its boxes.
SNAPSHOT_BODY_BYTES = 4 * 1024**2 + 64 * 1024


@dataclass(frozen=True)
class RouteLimit:
    method: str
    path: re.Pattern[str]
    max_bytes: int
    what: str  # names the setting or the reason, for the 413's message


def route_limits(settings: ControlPlaneSettings) -> list[RouteLimit]:
    """The routes that take more than ``max_request_body_bytes``, first match wins."""
    return [
        RouteLimit("POST", re.compile(r"^/api/v1/artifacts/?$"), settings.max_artifact_bytes,
                   "max_artifact_bytes"),
        RouteLimit("POST", re.compile(r"^/api/v1/samples/?$"), SAMPLE_BODY_BYTES,
                   f"one JPEG of at most {MAX_IMAGE_BYTES} bytes"),
        RouteLimit("POST", re.compile(r"^/api/v1/snapshots/?$"), SNAPSHOT_BODY_BYTES,
                   "one snapshot JPEG of at most 4 MiB in base64"),
        RouteLimit("POST", re.compile(r"^/api/v1/models/[^/]+/versions/?$"),
                   REGISTRATION_BODY_BYTES, "the largest model registration"),
    ]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes its limit; FastAPI re-raises an
    HTTPException from body parsing, so the client gets this 413 and not a 400."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(
            status_code=413,
            detail=f"request body over {limit} bytes ({what}): send less, or raise the limit",
        )


class BodyGuard:
    """ASGI middleware: authenticate before reading a body; limit bodies per route."""

    def __init__(self, app: ASGIApp, settings: ControlPlaneSettings,
                 limits: Sequence[RouteLimit] | None = None) -> None:
        self.app = app
        self.default = settings.max_request_body_bytes
        self.limits = list(limits) if limits is not None else route_limits(settings)

    def limit_for(self, method: str, path: str) -> tuple[int, str]:
        for rule in self.limits:
            if rule.method == method and rule.path.match(path):
                return rule.max_bytes, rule.what
        return self.default, "max_request_body_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is None and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        limit, what = self.limit_for(scope["method"], scope["path"])
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(scope, receive, send, BodyTooLarge(limit, what))
            return
        if scope["path"].startswith(API_PREFIX) and declared != "0":
            refused = await self._authenticate(scope, headers)
            if refused is not None:
                await _answer(scope, receive, send, refused)
                return
        await self.app(scope, _counting(receive, limit, what), send)

    async def _authenticate(self, scope: Scope, headers: Headers) -> HTTPException | None:
        app_state: AppState = scope["app"].state.parkwatch
        client = scope["client"][0] if scope.get("client") else "unknown"
        token = bearer_token(headers.get("authorization"))
        try:
            principal = await run_in_threadpool(_check, app_state, client, token)
        except AuthError as exc:
            return HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"})
        except HTTPException as exc:  # 429: this address failed too often
            return exc
        scope.setdefault("state", {})["principal"] = principal
        return None


def _check(app_state: AppState, client: str, token: str | None) -> Principal:
    with Session(app_state.engine, expire_on_commit=False) as session:
        return check_credentials(session, app_state, client, token)


def _counting(receive: Receive, limit: int, what: str) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit, what)
        return message

    return counted


async def _answer(scope: Scope, receive: Receive, send: Send, exc: HTTPException) -> None:
    # The unread body is left on the connection: close it rather than read it to reuse it.
    headers = {**(exc.headers or {}), "Connection": "close"}
    response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
    await response(scope, receive, send)
