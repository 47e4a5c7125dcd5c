"""The control plane off the happy path: `serve`, `db upgrade` and the operator CLI meet a
fault and say it in one line that names the fix, within seconds, with no traceback.

Real processes (`python -m parkwatch_cli`), real Mosquitto and PostgreSQL; a service that
is "down" is a free port nothing listens on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from parkwatch_cli import app as root_app
from tests.conftest import REPO_ROOT, Mosquitto, free_port, wait_for

pytestmark = pytest.mark.postgres


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    env.update({"PARKWATCH_DATA_DIR": str(tmp_path / "data"), "PARKWATCH_PORT": str(free_port()),
                "PARKWATCH_EMBEDDED_BROKER_PORT": str(free_port()), **extra})
    return env


def _fails_in_one_line(args: list[str], env: dict[str, str]) -> tuple[str, float]:
    """Run ``parkwatch args``; it must exit 1 with one line on stderr; (line, seconds)."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "parkwatch_cli", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    print(f"parkwatch {' '.join(args)}: {took:.1f}s: {errors[0]}")
    return errors[0], took


def test_serve_on_a_port_a_mosquitto_holds(tmp_path: Path, mosquitto: Mosquitto) -> None:
    env = _env(tmp_path, PARKWATCH_EMBEDDED_BROKER_PORT=str(mosquitto.port))
    line, _ = _fails_in_one_line(["serve"], env)
    assert f"127.0.0.1:{mosquitto.port} for the embedded MQTT broker is taken" in line
    assert f"PARKWATCH_MQTT_URL=mqtt://127.0.0.1:{mosquitto.port}" in line


def test_serve_with_an_unwritable_data_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    line, _ = _fails_in_one_line(["serve"], _env(tmp_path, PARKWATCH_DATA_DIR=str(blocker / "d")))
    assert "data_dir" in line and "not writable" in line


def test_serve_and_db_upgrade_with_postgresql_down(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://parkwatch:pw@127.0.0.1:{free_port()}/parkwatch"
    env = _env(tmp_path, PARKWATCH_DATABASE_URL=url)
    for command in (["db", "upgrade"], ["serve"]):
        line, _ = _fails_in_one_line(command, env)
        assert "cannot connect to the database" in line and "PARKWATCH_DATABASE_URL" in line
        assert "pw@" not in line  # the password stays out of the message


def test_db_upgrade_with_an_unknown_role(tmp_path: Path, postgres_url: str) -> None:
    base, _, name = postgres_url.rpartition("/")
    url = base.replace("postgres@", "nosuchrole@", 1) + "/" + name
    line, _ = _fails_in_one_line(["db", "upgrade"], _env(tmp_path, PARKWATCH_DATABASE_URL=url))
    assert 'role "nosuchrole" does not exist' in line


def test_serve_with_an_unreachable_broker_says_so_and_is_not_healthy(tmp_path: Path) -> None:
    broker = free_port()
    env = _env(tmp_path, PARKWATCH_MQTT_URL=f"mqtt://127.0.0.1:{broker}")
    api = f"http://127.0.0.1:{env['PARKWATCH_PORT']}"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "parkwatch_cli", "serve"], cwd=REPO_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("refused the connection" in ln for ln in lines), timeout=30)
        took = time.monotonic() - started

        def health() -> httpx.Response | None:
            try:
                return httpx.get(f"{api}/healthz", timeout=2)
            except httpx.HTTPError:
                return None

        answer = wait_for(health, timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert answer is not None and answer.status_code == 503
    body = answer.json()
    assert body["mqtt"] == "disconnected" and body["status"] == "degraded"
    assert "refused the connection" in body["services"]["mqtt"]["detail"]
    line = next(ln for ln in lines if "refused the connection" in ln)
    assert f"127.0.0.1:{broker}" in line and "PARKWATCH_MQTT_URL" in line
    print(f"serve, broker unreachable: logged after {took:.1f}s (process start included)")


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()


def test_cli_against_an_api_that_never_answers(silent_api: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARKWATCH_API_URL", silent_api)
    monkeypatch.setenv("PARKWATCH_API_TOKEN", "pw_any")
    monkeypatch.delenv("PARKWATCH_CONFIG", raising=False)
    started = time.monotonic()
    result = CliRunner().invoke(root_app, ["--timeout", "1", "models", "list"])
    took = time.monotonic() - started
    assert result.exit_code == 1
    assert "did not answer within 1s" in result.output and "--timeout" in result.output
    assert result.output.count("\n") == 1 and took < 20
    print(f"CLI, silent API, --timeout 1: {took:.1f}s")
