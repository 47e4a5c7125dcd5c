"""How a client of the control plane's HTTP API words a failed call: one line naming the fix.

The operator CLI and the trainer's registry client both use it. No HTTP library is
imported here: each client passes the status and the body it got, and its own hints
(its flags and environment variables). Part of the small dependency-free toolkit
``protocols`` shares with every component.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class ClientHints:
    """What this client's user does to reach the API, and to give it a token."""

    reach: str
    token: str


def error_detail(body: bytes, reason: str = "") -> str:
    """The ``detail`` of the control plane's error body (it names the fix); else the body's
    text, else ``reason`` (the HTTP reason phrase)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:300] or reason
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])[:500]
    return str(data)[:300]


def unreachable(base_url: str, call: str, hints: ClientHints) -> str:
    return f"cannot reach the control plane at {base_url} ({call}): {hints.reach}"


def transport_failed(call: str, error: BaseException, hints: ClientHints | None = None) -> str:
    """A call that reached an address but got no HTTP answer from it (something else
    listens there: a database, a broker); ``hints`` say how to point the client elsewhere."""
    said = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "no detail")
    said = said.rstrip(".")
    line = f"{call} failed: {type(error).__name__}: {said}"
    return f"{line}: is that the control plane's HTTP API? {hints.reach}" if hints else line


def answered(status: int, body: bytes, *, call: str, hints: ClientHints, token_sent: bool,
             reason: str = "") -> str:
    """The message for an error answer (``status`` >= 400) to ``call``."""
    detail = error_detail(body, reason)
    if status == 401 and not token_sent:
        return f"{call}: no API token: {hints.token}"
    if status in (401, 403):
        return f"{call}: the control plane refused the token ({status}: {detail}); {hints.token}"
    return f"{call}: {status}: {detail}"


def retry_after_seconds(value: str | None, default: float, *, cap: float = 3600.0,
                        now: datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date), within
    [0, ``cap``]; ``default`` when it is missing or unreadable."""
    if value is None or not value.strip():
        return default
    text = value.strip()
    if text.isdigit():
        return min(float(text), cap)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), cap)


__all__ = [
    "ClientHints",
    "answered",
    "error_detail",
    "retry_after_seconds",
    "transport_failed",
    "unreachable",
]
