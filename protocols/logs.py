"""Structured logging shared by every component: JSON lines when not a TTY.

Context such as ``device_id`` and ``release_id`` is bound once with
:func:`bind_context` and then appears on every line logged in that context.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("parkwatch_log_ctx")
_static: dict[str, Any] = {}
_RESERVED = set(vars(logging.makeLogRecord({})))
_SECRET_KEYS = {"token", "password", "secret", "authorization", "private_key"}
# Applied to every formatted line, so a credential that reaches a message by any road (an
# access log's query string, an exception's text, a URL with a password) is masked.
_SECRET_TEXT = (
    (re.compile(r"(?i)([?&;](?:[a-z_]*token|password|secret|api_key|key|sig|signature)=)"
                r"[^&;\s\"']+"), r"\1***"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"\bpw_[A-Za-z0-9_-]{8,}"), "pw_***"),
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/\s@\"']*:)[^@/\s\"']+@"), r"\1***@"),
)


def redact(text: str) -> str:
    """``text`` with tokens, passwords in URLs and credential query parameters masked."""
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def set_static_context(**fields: Any) -> None:
    """Fields put on every line of this process (e.g. the agent's device_id)."""
    _static.update({k: v for k, v in fields.items() if v is not None})
    for k in [k for k, v in fields.items() if v is None]:
        _static.pop(k, None)


@contextmanager
def bind_context(**fields: Any) -> Iterator[None]:
    """Add fields to every line logged inside the ``with`` block (thread/task-local)."""
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {**_static, **_context.get({})}
    for key, value in vars(record).items():
        if key not in _RESERVED and not key.startswith("_"):
            out[key] = "***" if key.lower() in _SECRET_KEYS else value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(line, default=str))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            text += f"  [{extras}]"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


def configure_logging(level: str = "INFO", json_lines: bool | None = None) -> None:
    """Log to stderr; JSON lines unless stderr is a terminal (or as forced)."""
    use_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # alembic.runtime.plugins lists its autogenerate plugins at INFO on every start.
    for noisy in ("httpx", "httpcore", "amqtt", "transitions", "uvicorn.access",
                  "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
