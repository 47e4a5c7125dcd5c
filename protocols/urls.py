"""The broker URL, parsed one way by every component, and URLs made safe for a log line.

Part of the small dependency-free toolkit ``protocols`` shares with every component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ._errors import ProtocolError


@dataclass(frozen=True)
class MqttUrl:
    """A parsed ``mqtt://[user:password@]host[:port]`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line


def parse_mqtt_url(url: str) -> MqttUrl:
    """``mqtt://`` (port 1883 by default) or ``mqtts://`` (TLS, port 8883); user and
    password percent-decoded. ProtocolError names what is wrong (the URL shown without
    its password)."""
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ProtocolError(f"MQTT URL {shown!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ProtocolError(f"MQTT URL {shown!r} has no host: use mqtt://host:1883")
    try:
        port = parts.port
    except ValueError:
        raise ProtocolError(f"MQTT URL {shown!r} has an invalid port") from None
    tls = parts.scheme == "mqtts"
    return MqttUrl(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for output that may reach a log)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL a password could be read from
        return url
    if password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


__all__ = ["MqttUrl", "parse_mqtt_url", "redact_url"]
