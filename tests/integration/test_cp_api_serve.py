"""Hostile HTTP clients against a real ``parkwatch serve`` process (uvicorn, SQLite, the
embedded broker): bodies are refused before they are read, proxy headers from an untrusted
peer are ignored, another client's bad tokens never lock out a valid one, sample uploads are
limited per device token, and no token created in the run appears in any line it logged."""

from __future__ import annotations

import base64
import os
import re
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port, wait_for_port
from tests.integration.test_cp_samples import sample_body

pytestmark = pytest.mark.timeout(180)
API = "/api/v1"
MIB = 1024**2


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    admin: str
    secrets: list[str] = field(default_factory=list)  # every credential the run created

    def headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def peak_rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        assert match, status
        return int(match[1]) / 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("serve")
    port, mqtt_port = free_port(), free_port()
    env = {**os.environ, "PARKWATCH_DATA_DIR": str(data / "cp"), "PARKWATCH_PORT": str(port),
           "PARKWATCH_EMBEDDED_BROKER_PORT": str(mqtt_port), "PARKWATCH_LOG_LEVEL": "DEBUG",
           "PARKWATCH_MQTT_CLIENT_ID": "cp-hostile", "PARKWATCH_AUTH_FAILURE_LIMIT": "5",
           "PARKWATCH_AUTH_FAILURE_WINDOW_SECONDS": "3600",
           "PARKWATCH_SAMPLE_UPLOADS_PER_HOUR": "10", "PARKWATCH_MQTT_DEVICE_CREDENTIALS": "true"}
    for key in ("PARKWATCH_CONFIG", "PARKWATCH_MQTT_URL", "PARKWATCH_TRUSTED_PROXIES"):
        env.pop(key, None)
    log = data / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "parkwatch_cli", "serve"], cwd=REPO_ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=60)
        admin = (data / "cp" / "admin.token").read_text().strip()
        yield Served(f"http://127.0.0.1:{port}", port, proc, log, admin, [admin])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _post_until_answered(port: int, path: str, token: str, total: int) -> tuple[int, int]:
    """POST a chunked body of ``total`` bytes, 64 KiB at a time, stopping as soon as the
    server answers; returns (status, body bytes sent before the answer)."""
    chunk = b"[" + b"1," * (32 * 1024 - 1) + b"1]"  # 64 KiB of JSON-looking bytes
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        while sent < total and not select.select([sock], [], [], 0.05 if sent == 0 else 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break
            sent += len(chunk)
        if sent >= total:
            sock.sendall(b"0\r\n\r\n")
        answer = sock.recv(4096)
    status = int(answer.split(b" ", 2)[1])
    return status, sent


def test_bodies_are_refused_before_they_are_read(served: Served) -> None:
    with httpx.Client(base_url=served.url + API, headers=served.headers(served.admin)) as http:
        assert http.get("/devices").status_code == 200  # warm: the first request's imports
    before = served.peak_rss_mib()
    status, sent = _post_until_answered(served.port, f"{API}/devices", "pw_" + "x" * 43, 36 * MIB)
    assert status == 401, status
    assert sent <= 1 * MIB, f"{sent} bytes went in before the 401"
    big, sent_big = _post_until_answered(served.port, f"{API}/devices", served.admin, 36 * MIB)
    assert big == 413 and sent_big < 16 * MIB, (big, sent_big)  # socket buffers hold MiBs
    declared = httpx.post(f"{served.url}{API}/groups", content=b"{}" * (MIB // 2 + 1),
                          headers=served.headers(served.admin))
    assert declared.status_code == 413
    assert "max_request_body_bytes" in declared.json()["detail"]
    grown = served.peak_rss_mib() - before
    print(f"injected: 36 MiB bodies (no token; admin token, chunked) and a declared 1 MiB "
          f"-> observed 401 after {sent} B, 413 after {sent_big} B, 413; peak RSS +{grown:.1f} MiB")
    assert grown < 32, f"the server's peak memory grew {grown:.1f} MiB"


def test_forged_forwarded_for_neither_escapes_the_limit_nor_reaches_the_log(
    served: Served,
) -> None:
    codes = []
    with httpx.Client(base_url=served.url + API) as http:
        for i in range(7):
            bad = {"Authorization": f"Bearer pw_guess{i}", "X-Forwarded-For": f"203.0.113.{i}"}
            codes.append(http.get("/devices", headers=bad).status_code)
        limited = http.get("/devices", headers={"Authorization": "Bearer pw_guess",
                                                "X-Forwarded-For": "198.51.100.9"})
        # Another client's failures from this address never lock out a valid token.
        valid = http.get("/devices", headers=served.headers(served.admin))
    # Limit 5 per address; an earlier test of this module may have spent one.
    assert 429 in codes and codes.index(429) <= 5, codes
    assert set(codes[:codes.index(429)]) <= {401} and set(codes[codes.index(429):]) == {429}
    assert limited.status_code == 429 and "from 127.0.0.1" in limited.json()["detail"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 3600
    assert valid.status_code == 200, valid.text
    log = served.log.read_text()
    assert "GET /api/v1/devices" in log, "no access log: the check would prove nothing"
    assert "203.0.113." not in log and "198.51.100.9" not in log
    print(f"injected: 7 bad tokens behind forged X-Forwarded-For -> observed {codes}, then a "
          f"valid token from the same address: {valid.status_code}")


def test_sample_uploads_are_limited_per_device_token(served: Served) -> None:
    admin = served.headers(served.admin)
    with httpx.Client(base_url=served.url + API) as http:
        made = [http.post("/devices", json={"device_id": f"cam-up{i}"}, headers=admin).json()
                for i in (1, 2)]
        served.secrets += [m["token"] for m in made]
        served.secrets += re.findall(r'mqtt_password = "([^"]+)"', made[0]["agent_config_toml"])
        first, second = (served.headers(m["token"]) for m in made)
        codes = [http.post("/samples", json=sample_body(), headers=first).status_code
                 for _ in range(6)]
        limited = http.post("/samples", json=sample_body(), headers=first)
        other = http.post("/samples", json=sample_body(), headers=second)
        huge = base64.b64encode(b"\xff\xd8\xff" + b"\0" * (3 * MIB)).decode()
        too_big = http.post("/samples", json=sample_body(image_jpeg_b64=huge), headers=second)
    assert codes == [201] * 5 + [429], codes
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "sample_uploads_per_hour" in limited.json()["detail"]
    assert other.status_code == 201, other.text
    assert too_big.status_code == 413 and "JPEG" in too_big.json()["detail"], too_big.text
    print(f"injected: 7 uploads from one device token (10/h, burst 5), one 4 MiB upload -> "
          f"observed {[*codes, limited.status_code]}, another device {other.status_code}, "
          f"{too_big.status_code}")


def test_no_credential_in_any_log_line(served: Served) -> None:
    """Runs last: the whole run's log is grepped for every credential it created."""
    admin = served.headers(served.admin)
    with httpx.Client(base_url=served.url) as http:
        made = http.post(f"{API}/tokens", json={"name": "ops", "scopes": ["read"]}, headers=admin)
        assert made.status_code == 201, made.text
        ops = made.json()["token"]
        served.secrets.append(ops)
        for token in (served.admin, ops):  # credentials where they should never be
            http.get(f"/dashboard/?token={token}")
            http.get(f"{API}/devices?token={token}&limit=5", headers=admin)
            http.get(f"{API}/devices?access_token={token}")
            http.get(f"{API}/nowhere/{token}")
            http.get(f"{API}/devices", headers={"Authorization": f"Bearer {token}x"})
        http.delete(f"{API}/tokens/{made.json()['id']}", headers=admin)
        assert http.get(f"{API}/devices", headers=served.headers(ops)).status_code in (401, 429)
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(timeout=30)
    log = served.log.read_text()
    lines = log.count("\n")
    assert "/dashboard/?token=***" in log and lines > 50, "nothing to grep: proves nothing"
    leaked = [s[:6] + "..." for s in set(served.secrets) if s in log]
    print(f"injected: {len(set(served.secrets))} credentials through provisioning, query "
          f"strings, paths and bad bearer headers -> observed {lines} log lines, leaks {leaked}")
    assert not leaked


def test_a_configured_proxy_is_believed(tmp_path: Path) -> None:
    """With trusted_proxies set, serve's server takes the client from X-Forwarded-For: each
    forwarded client is limited on its own, and a valid token passes whatever came before."""
    import threading

    import uvicorn

    from control_plane.api import create_app
    from control_plane.config import ControlPlaneSettings
    from control_plane.processes.serve import uvicorn_config

    settings = ControlPlaneSettings(data_dir=tmp_path / "cp", port=free_port(),
                                    trusted_proxies=["127.0.0.0/8"], auth_failure_limit=2)
    server = uvicorn.Server(uvicorn_config(create_app(settings, enable_mqtt=False), settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(settings.port, timeout=30)
        admin = settings.admin_token_path.read_text().strip()

        def get(forwarded: str, token: str) -> httpx.Response:
            return httpx.get(f"http://127.0.0.1:{settings.port}{API}/devices", headers={
                "Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded})

        codes = [get("203.0.113.7", "pw_guess").status_code for _ in range(3)]
        other = get("203.0.113.8", "pw_guess")
        valid = get("203.0.113.7", admin)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert codes == [401, 401, 429], codes
    assert other.status_code == 401  # another client behind the proxy is not limited
    assert valid.status_code == 200
    with pytest.raises(ValueError, match="not an IP address"):
        ControlPlaneSettings(data_dir=tmp_path, trusted_proxies=["proxy.example"])
