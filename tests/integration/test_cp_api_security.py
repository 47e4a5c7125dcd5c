"""API security: every operation of the OpenAPI spec walked with every kind of caller,
rate limiting of authentication failures, and secrets kept out of the logs."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings
from control_plane.services import auth
from control_plane.store.db import create_db_engine, session_scope
from control_plane.store.keys import Keyring

API = "/api/v1"
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}  # liveness and Prometheus, no secrets
# Calls only an admin may make (other reads need read, other writes operate).
ADMIN_ONLY = {
    ("POST", "/api/v1/devices"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("GET", "/api/v1/audit"),
    ("DELETE", "/api/v1/models/{name}/versions/{version}"),
    ("POST", "/api/v1/devices/{device_id}/reissue"),  # new credentials: like provisioning
    ("POST", "/api/v1/devices/{device_id}/decommission"),
}
# Frames come from cameras, not operators.
DEVICE_ONLY = {("POST", "/api/v1/samples"), ("POST", "/api/v1/snapshots")}
# What a provisioned agent may call: its release manifest, artifacts and sample uploads.
DEVICE_ALLOWED = {
    ("GET", "/api/v1/releases/{release_id}/manifest"),
    ("GET", "/api/v1/artifacts/{sha256}"),
    ("HEAD", "/api/v1/artifacts/{sha256}"),
    ("POST", "/api/v1/samples"),
    ("POST", "/api/v1/snapshots"),
    ("GET", "/api/v1/whoami"),  # any valid token may ask what it may do
}
CALLERS = ("none", "bogus", "device", "read", "operate", "admin")
_RANK = {"read": 1, "operate": 2, "admin": 3}


def _make_token(settings: ControlPlaneSettings, scope: str, device_id: str | None) -> str:
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            _row, secret = auth.create_token(
                session, f"walk-{scope}", [scope], who="test", device_id=device_id
            )
    finally:
        engine.dispose()
    return secret


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, ControlPlaneSettings, dict[str, str]]]:
    settings = ControlPlaneSettings(data_dir=tmp_path / "data", auth_failure_limit=100_000)
    Keyring(settings.keys_dir).init()
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        admin = settings.admin_token_path.read_text().strip()
        r = client.post(f"{API}/devices", json={"device_id": "cam-walk"},
                        headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 201, r.text
        tokens = {"admin": admin, "device": r.json()["token"], "bogus": "pw_" + "x" * 43}
        for scope in ("read", "operate"):
            tokens[scope] = _make_token(settings, scope, None)
        yield client, settings, tokens


def _fill_path(path: str, params: list[dict[str, Any]]) -> str:
    """Path parameters that are well-formed but name nothing (so handlers answer 404/422)."""
    for param in params:
        if param.get("in") != "path":
            continue
        schema = param.get("schema", {})
        value = "999999" if schema.get("type") == "integer" else "zz-walk-missing"
        if param["name"] == "sha256":
            value = "0" * 64
        path = path.replace("{" + param["name"] + "}", value)
    return path


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete", "head"):
                ops.append((method.upper(), path, op))
    return ops


def _call(client: TestClient, method: str, path: str, op: dict[str, Any],
          token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = _fill_path(path, op.get("parameters", []))
    body = op.get("requestBody", {}).get("content", {})
    if "application/json" in body:
        return client.request(method, url, json={}, headers=headers).status_code
    if body:
        return client.request(method, url, content=b"", headers=headers).status_code
    return client.request(method, url, headers=headers).status_code


def _expected(method: str, path: str, caller: str) -> bool:
    """True when the policy lets ``caller`` through (any answer but 401/403)."""
    key = (method, path)
    if key in PUBLIC:
        return True
    if caller in ("none", "bogus"):
        return False
    if caller == "device":
        return key in DEVICE_ALLOWED
    if key in DEVICE_ONLY:
        return False
    need = "admin" if key in ADMIN_ONLY else ("read" if method in ("GET", "HEAD") else "operate")
    return _RANK[caller] >= _RANK[need]


def test_every_route_enforces_its_scope(
    api: tuple[TestClient, ControlPlaneSettings, dict[str, str]],
) -> None:
    client, _settings, tokens = api
    ops = _operations(client.app.openapi())  # type: ignore[attr-defined]
    assert len(ops) > 40, "the spec lost its operations"
    wrong: list[str] = []
    table: dict[str, int] = {}
    for method, path, op in ops:
        for caller in CALLERS:
            status = _call(client, method, path, op, tokens.get(caller))
            table[f"{method} {path} {caller}"] = status
            allowed = status not in (401, 403)
            if allowed != _expected(method, path, caller):
                wrong.append(f"{method} {path} as {caller}: {status}")
            elif not allowed and caller in ("none", "bogus") and status != 401:
                wrong.append(f"{method} {path} as {caller}: {status}, expected 401")
            assert status < 500, f"{method} {path} as {caller}: {status}"
    denied = sum(1 for s in table.values() if s in (401, 403))
    print(f"injected: {len(ops)} operations x {len(CALLERS)} callers -> observed "
          f"{denied} refusals, {len(table) - denied} admitted, {len(wrong)} off-policy")
    assert not wrong, "routes off the scope policy:\n" + "\n".join(wrong)


def test_auth_failures_are_rate_limited_per_client(tmp_path: Path) -> None:
    settings = ControlPlaneSettings(
        data_dir=tmp_path / "data", auth_failure_limit=5, auth_failure_window_seconds=3600
    )
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        good = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        bad = {"Authorization": "Bearer pw_guess"}
        codes = [client.get(f"{API}/devices", headers=bad).status_code for _ in range(5)]
        assert codes == [401] * 5
        limited = client.get(f"{API}/devices", headers=bad)
        assert limited.status_code == 429
        retry = int(limited.headers["Retry-After"])
        assert 1 <= retry <= 3600
        assert "too many authentication failures" in limited.json()["detail"]
        # Only bad tokens are limited: a valid one from the same address (a NAT) passes.
        assert client.get(f"{API}/devices", headers=good).status_code == 200
        assert client.get(f"{API}/devices", headers=bad).status_code == 429
        assert client.get("/healthz").status_code == 200
    with TestClient(create_app(settings, enable_mqtt=False),
                    client=("10.9.9.9", 50000)) as other:
        assert other.get(f"{API}/devices", headers=good).status_code == 200
    print(f"injected: 6 bad tokens from one address -> observed {codes} then 429 "
          f"(Retry-After {retry} s); another address still admitted")


_SECRET_PATTERNS = (
    re.compile(r"pw_[A-Za-z0-9_-]{20,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


def test_secrets_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Provision, create and revoke tokens, fail auth, write agent and broker credentials:
    no token, broker password or private key appears in any log record."""
    from control_plane.broker import acl as mqtt_acl
    from edge_agent.config import load_settings

    caplog.set_level(logging.DEBUG)
    settings = ControlPlaneSettings(
        data_dir=tmp_path / "data", mqtt_device_credentials=True, auth_failure_limit=3
    )
    Keyring(settings.keys_dir).init()
    secrets: list[str] = []
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        admin_token = settings.admin_token_path.read_text().strip()
        admin = {"Authorization": f"Bearer {admin_token}"}
        secrets.append(admin_token)
        made = client.post(f"{API}/devices", json={"device_id": "cam-s"}, headers=admin).json()
        secrets.append(made["token"])
        agent_toml = made["agent_config_toml"]
        password = agent_toml.split('mqtt_password = "')[1].split('"')[0]
        secrets.append(password)
        tok = client.post(f"{API}/tokens", json={"name": "ops", "scopes": ["read"]},
                          headers=admin)
        assert tok.status_code == 201, tok.text
        secrets.append(tok.json()["token"])
        for _ in range(4):  # failures and the rate limit log the client, never the token
            client.get(f"{API}/devices", headers={"Authorization": f"Bearer {secrets[1]}x"})
        secrets.append(secrets[1] + "x")
    agent_file = tmp_path / "agent.toml"
    agent_file.write_text(agent_toml.replace("/var/lib/parkwatch-agent", str(tmp_path / "a")))
    agent = load_settings(agent_file)
    logging.getLogger("test").info("agent settings", extra={"settings": repr(agent),
                                                            "mqtt": repr(agent.mqtt)})
    engine = create_db_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        accounts = mqtt_acl.accounts_from_registry(session, mqtt_acl.load_secret(settings.data_dir))
    engine.dispose()
    logging.getLogger("test").info("accounts", extra={"accounts": repr(accounts)})
    secrets += [a.password for a in accounts]
    private_keys = list(settings.keys_dir.glob("*.pem"))
    assert any(b"PRIVATE KEY" in p.read_bytes() for p in private_keys)

    out, err = capfd.readouterr()
    text = "\n".join(
        [r.getMessage() + " " + repr(r.__dict__) for r in caplog.records] + [out, err]
    )
    assert len(caplog.records) > 5, "nothing was logged: the check would prove nothing"
    leaked = [s[:8] + "..." for s in secrets if s in text]
    leaked += [p.pattern for p in _SECRET_PATTERNS if p.search(text)]
    print(f"injected: {len(secrets)} secrets through provisioning, auth failures, settings "
          f"and broker accounts -> observed {len(caplog.records)} log records, leaks {leaked}")
    assert not leaked


def test_405_names_every_method_the_path_serves(
    api: tuple[TestClient, ControlPlaneSettings, dict[str, str]],
) -> None:
    """A wrong method gets 405 with an Allow header listing all the path's methods (GET
    and POST /devices are two routes; Starlette named only the first one it met)."""
    client, _settings, tokens = api
    spec = client.app.openapi()  # type: ignore[attr-defined]
    wrong: list[str] = []
    for path, item in spec["paths"].items():
        served = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch",
                                                    "head")}
        unused = sorted({"GET", "PUT", "POST", "DELETE", "PATCH"} - served)[0]
        url = _fill_path(path, next(iter(item.values())).get("parameters", []))
        r = client.request(unused, url, headers={"Authorization": f"Bearer {tokens['admin']}"})
        allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
        # Allow may name more than this template: /drift/run also matches /drift/{x}.
        false = sorted(m for m in allow - served if client.request(
            m, url, headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code == 405)
        if r.status_code != 405 or not served <= allow or false:
            wrong.append(f"{unused} {path}: {r.status_code}, Allow {sorted(allow)} "
                         f"(serves {sorted(served)}; 405 for {false})")
    print(f"injected: one unserved method on each of {len(spec['paths'])} paths -> observed "
          f"{len(wrong)} wrong answers")
    assert not wrong, "\n".join(wrong)
