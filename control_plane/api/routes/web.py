"""The operator dashboard: static files from ``control_plane/web`` under ``/dashboard``.

The page holds no secrets and reads only the public ``/api/v1`` with the bearer token the
operator gives it (kept in the browser's localStorage), so serving it needs no token.
A strict Content-Security-Policy allows scripts from this origin only: the page has no
inline script and no third-party code.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
DASHBOARD_PATH = "/dashboard"
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]


class DashboardFiles(StaticFiles):
    """Static files with the security headers above on every answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Mount the dashboard and send ``/`` to it."""

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{DASHBOARD_PATH}/")

    app.mount(DASHBOARD_PATH, DashboardFiles(directory=WEB_DIR, html=True), name="dashboard")
