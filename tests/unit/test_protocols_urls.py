"""The one MQTT-URL parser (every component's), and URLs made safe for logs."""

from __future__ import annotations

import pytest

from protocols import ProtocolError
from protocols.urls import parse_mqtt_url, redact_url


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("mqtt://broker", "broker", 1883, False, None, None),
        ("mqtts://broker", "broker", 8883, True, None, None),
        ("mqtt://u:p%40ss@10.0.0.1:1884", "10.0.0.1", 1884, False, "u", "p@ss"),
        ("mqtts://us%40er:p%3Ass@broker.example:8884", "broker.example", 8884, True, "us@er",
         "p:ss"),
    ],
)
def test_parse_mqtt_url(
    url: str, host: str, port: int, tls: bool, user: str | None, password: str | None
) -> None:
    ep = parse_mqtt_url(url)
    assert (ep.host, ep.port, ep.tls, ep.username, ep.password) == (host, port, tls, user, password)
    assert "p@ss" not in repr(ep) and "p:ss" not in repr(ep)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "has no host"),
        ("mqtt://h:99999", "invalid port"),
        ("broker:1883", "must start with"),
    ],
)
def test_bad_mqtt_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ProtocolError, match=problem):
        parse_mqtt_url(url)


def test_an_error_never_shows_the_password() -> None:
    with pytest.raises(ProtocolError) as err:
        parse_mqtt_url("http://svc:hunter2@broker:1883")
    assert "hunter2" not in str(err.value) and "svc:***@broker" in str(err.value)


def test_redact_url() -> None:
    assert redact_url("mqtts://u:secret@h:8883") == "mqtts://u:***@h:8883"
    assert redact_url("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    assert redact_url("0") == "0"
