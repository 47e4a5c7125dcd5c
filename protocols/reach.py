"""Why a connection failed, in one line that names the fix, and a quick reachability probe.

Part of the small dependency-free toolkit ``protocols`` shares with every component: the
agent, the control plane and their CLIs all connect to brokers, APIs and cameras, and
an operator should read the same words for the same fault wherever it shows up.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
import time


def explain_connect_error(exc: BaseException, what: str, host: str, port: int,
                          setting: str) -> str:
    """One line for a failed connection to ``what`` at ``host:port``; ``setting`` is the
    key the operator would change (``mqtt_url``, ``PARKWATCH_MQTT_URL`` ...)."""
    where = f"{what} at {host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"cannot verify the TLS certificate of {where} ({exc.verify_message}): "
                f"trust its CA (mqtt_ca_file / --ca-file) or fix the host name in {setting}")
    if isinstance(exc, ssl.SSLError):
        return (f"TLS handshake with {where} failed ({exc.reason or exc}): is that port "
                f"TLS? use mqtt:// for a plain port and mqtts:// for a TLS one in {setting}")
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host of {where}: fix the host name in {setting}"
    if isinstance(exc, ConnectionRefusedError):
        return (f"{where} refused the connection: is it running and listening on port "
                f"{port}? check {setting}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return (f"{where} did not answer in time: check {setting}, the network "
                f"and any firewall between")
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"{where} is unreachable ({exc.strerror}): check {setting} and the network"
    return f"cannot connect to {where}: {exc or type(exc).__name__}; check {setting}"


def probe_tcp(host: str, port: int, timeout: float) -> OSError | None:
    """Open and close a TCP connection; the error, or None when something listens."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc


class RepeatFilter:
    """Logs a failure that repeats (a client retrying every second) once per reason, and
    again after ``repeat_seconds``: never silent, never a line per retry."""

    def __init__(self, logger: logging.Logger, repeat_seconds: float = 60.0) -> None:
        self._log = logger
        self._repeat = repeat_seconds
        self._lock = threading.Lock()
        self._last: tuple[str, float] | None = None

    @property
    def last(self) -> str | None:
        """The last failure logged since the last :meth:`clear`."""
        with self._lock:
            return self._last[0] if self._last else None

    def warn(self, line: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last
            if last is not None and last[0] == line and now - last[1] < self._repeat:
                return
            self._last = (line, now)
        self._log.warning("%s; retrying", line)

    def clear(self) -> None:
        with self._lock:
            self._last = None


__all__ = ["RepeatFilter", "explain_connect_error", "probe_tcp"]
