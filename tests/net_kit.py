"""A real TCP relay for tests that need a slow network between a client and a server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class SlowUpstream:
    """Relays one port to another; what the client sends after its first packet reaches
    the server ``delay`` seconds late (the server's answers are not delayed). With MQTT,
    the CONNECT goes through at once and everything after it (a SUBSCRIBE, say) lags."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.delay = delay
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, slow: bool) -> None:
        first = True
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                if slow and not first:
                    time.sleep(self.delay)
                first = False
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        for s in self._sockets:
            s.close()
