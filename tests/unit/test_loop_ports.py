"""Ports for servers the tests, the demo and the benches start."""

from __future__ import annotations

import socket

from scripts.loop import _ephemeral_low, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    # From the ephemeral range, the kernel may give the port to an outgoing connection's
    # local end before the server binds it ("address already in use" with no listener).
    low = _ephemeral_low()
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
