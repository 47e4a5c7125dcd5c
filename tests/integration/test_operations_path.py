"""docs/operations.md, "Setting it up", followed step by step against real PostgreSQL and
Mosquitto (TLS, password file, ACL): a role with a password, the config, `db upgrade`,
`keys init`, certificates, broker logins before any device, `serve`, `devices create` with
RTSP credentials, `mqtt acl` again and a broker reload, the agent's `mqtt_ca_file`,
`agent check`, an agent that comes online over TLS with its own login, and a release of
the champion rolled out in waves that waits for, and gets, an operator's approval.

What the machine does not allow: systemd (processes are started directly) and /etc
(temporary folders). The doc's commands are checked to be there, in this order.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from control_plane.testing import registration
from parkwatch_cli import app as root_app
from protocols import OutputSpec, generate_signing_key
from tests.agent_kit import make_release, write_video
from tests.agent_models import LABELS, SPEC, build_model, profile
from tests.conftest import REPO_ROOT, Mosquitto, _postgres_admin_url, free_port, wait_for

pytestmark = pytest.mark.postgres
DOC = REPO_ROOT / "docs" / "operations.md"
SHIPPED_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
# The doc's commands, in the order the doc gives them and this test runs them.
STEPS = [
    "CREATE ROLE parkwatch LOGIN PASSWORD",
    "CREATE DATABASE parkwatch OWNER parkwatch",
    "parkwatch db upgrade -c /etc/parkwatch/cp.toml",
    "parkwatch keys init -c /etc/parkwatch/cp.toml",
    "parkwatch mqtt dev-certs --out /etc/mosquitto/parkwatch",
    "parkwatch mqtt acl --out /etc/mosquitto/parkwatch -c /etc/parkwatch/cp.toml",
    "--show-service-password",
    "parkwatch serve -c /etc/parkwatch/cp.toml",
    "curl -s http://127.0.0.1:8000/healthz",
    "parkwatch devices create gate-1",
    "parkwatch mqtt acl --out /etc/mosquitto/parkwatch -c /etc/parkwatch/cp.toml",
    "systemctl reload mosquitto",
    "sed -i 's|^# mqtt_ca_file = |mqtt_ca_file = |' /etc/parkwatch/agent.toml",
    "parkwatch agent check --config /etc/parkwatch/agent.toml",
    "parkwatch aliases set MODEL champion N",
    "parkwatch releases create",
    "--approval-after-wave 1",
    "parkwatch rollouts approve ID",
]
SERVICES = ["--service-account", "parkwatch-control-plane",
            "--service-account", "parkwatch-ingest-1"]


def test_the_doc_gives_the_steps_in_this_order() -> None:
    text = DOC.read_text()
    section = text[text.index("## Setting it up"):text.index("## Backups")]
    at = 0
    for step in STEPS:
        found = section.find(step, at)
        assert found >= 0, f"docs/operations.md lost or reordered the step {step!r}"
        at = found + len(step)
    for unit in ("parkwatch-serve.service", "parkwatch-ingest@.service",
                 "parkwatch-worker.service", "parkwatch-agent.service"):
        assert (REPO_ROOT / "deploy" / unit).is_file() and unit in section
    pilot = (REPO_ROOT / "deploy" / "pilot" / "mosquitto.conf").read_text()
    assert "listener 1883" in pilot and "allow_anonymous false" in pilot
    cp = tomllib.loads((REPO_ROOT / "deploy" / "pilot" / "cp.toml").read_text())
    assert cp["mqtt_url"].startswith("mqtt://") and cp["mqtt_device_credentials"] is True


@pytest.fixture
def role_and_database() -> Iterator[tuple[str, str, str]]:
    """Step 1: a login role with a password and a database it owns; (role, pw, url)."""
    psycopg = pytest.importorskip("psycopg")
    admin = _postgres_admin_url()
    dsn = admin.replace("postgresql+psycopg://", "postgresql://")
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {dsn}: {exc}".splitlines()[0])
    name = f"pw_ops_{uuid.uuid4().hex[:8]}"
    password = "change-me"
    with conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        conn.execute(f"CREATE DATABASE {name} OWNER {name}")
    host = admin.split("@", 1)[1].rsplit("/", 1)[0]
    try:
        yield name, password, f"postgresql+psycopg://{name}:{password}@{host}/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {name}")


def cli(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(root_app, args, env=env)
    assert result.exit_code == 0, f"parkwatch {' '.join(args)}: {result.output}"
    return result.output


def _process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "parkwatch_cli", *args], cwd=REPO_ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _register(api: str, data: Path) -> None:
    """What `parkwatch train --api-url` sends: a real (tiny) ONNX model, its golden inputs
    and reference profile (training one here would take minutes)."""
    model = build_model()
    admin = {"Authorization": f"Bearer {(data / 'admin.token').read_text().strip()}"}
    with httpx.Client(base_url=api, headers=admin, timeout=30) as http:
        sha = http.post("/api/v1/artifacts", content=model).json()["sha256"]
        goldens = make_release(generate_signing_key(), "local", model).manifest.golden_inputs
        spec = registration("petnet", [(sha, len(model), "int8")], labels=LABELS, input=SPEC,
                            outputs=OutputSpec(embedding_dim=3), reference_profile=profile(),
                            golden_inputs=goldens)
        answer = http.post("/api/v1/models/petnet/versions", json=spec.model_dump(mode="json"))
        assert answer.status_code == 201, answer.text


def approved_rollout(api: str, data: Path, ops: dict[str, str]) -> None:
    """Step 9: a version made champion, a signed release of it, a rollout in waves that
    waits for an operator's approval, and the device running it healthy."""
    _register(api, data)
    cli(["aliases", "set", "petnet", "champion", "1"], ops)
    release = json.loads(cli(["releases", "create", "petnet", "--json"], ops))["release_id"]
    rollout = json.loads(cli(["rollouts", "start", release, "--device", "gate-1", "--device",
                              "gate-2", "--waves", "1,100%", "--approval-after-wave", "1",
                              "--json"], ops))["rollout_id"]

    seen: list[dict[str, object]] = []

    def state() -> str:
        seen.append(json.loads(cli(["rollouts", "status", rollout, "--json"], ops)))
        return str(seen[-1]["state"])

    try:
        wait_for(lambda: state() == "awaiting_approval" or None, timeout=90,
                 what="the rollout to wait for approval", interval=1.0)
    except AssertionError:
        raise AssertionError(f"rollout never waited for approval: {seen[-1]}") from None
    cli(["rollouts", "approve", rollout], ops)
    assert state() in ("in_progress", "completed")

    def running() -> bool:
        shown = json.loads(cli(["devices", "show", "gate-1", "--json"], ops))
        active = (shown.get("reported") or {}).get("active") or {}
        return bool(active.get("release_id") == release and active.get("stage") == "healthy")

    wait_for(running, timeout=60, what="gate-1 healthy on the release", interval=1.0)


def test_operations_path(tmp_path: Path, role_and_database: tuple[str, str, str]) -> None:
    role, _, database_url = role_and_database
    etc, data = tmp_path / "etc", tmp_path / "cp"
    broker_port, api_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    # Step 2: the config without secrets; the secrets in the environment.
    cp_toml = tmp_path / "cp.toml"
    cp_toml.write_text(
        f'data_dir = "{data}"\n'
        f'database_url = "postgresql+psycopg://{role}@127.0.0.1/{role}"\n'
        f'mqtt_url = "mqtts://localhost:{broker_port}"\n'
        'mqtt_username = "parkwatch-control-plane"\n'
        f'mqtt_ca_file = "{etc / "ca.pem"}"\n'
        f'public_url = "{api}"\n'
        f'public_mqtt_url = "mqtts://localhost:{broker_port}"\n'
        "mqtt_device_credentials = true\n"
        'ingest_share_group = "ingest"\n'
        f"port = {api_port}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    env.update({"PARKWATCH_CONFIG": str(cp_toml), "PARKWATCH_DATABASE_URL": database_url})
    # Step 3: the store and the signing key, before any server runs.
    assert "up to date" in cli(["db", "upgrade", "-c", str(cp_toml)], env)
    cli(["keys", "init", "-c", str(cp_toml)], env)
    # Step 4: certificates (throw-away CA: the machine has no other).
    cli(["mqtt", "dev-certs", "--out", str(etc), "--host", "localhost"], env)
    # Step 5: broker logins before any device, then the broker with the shipped config.
    out = cli(["mqtt", "acl", "--out", str(etc), "-c", str(cp_toml), *SERVICES,
               "--show-service-password"], env)
    assert "0 device(s)" in out
    env["PARKWATCH_MQTT_PASSWORD"] = re.search(
        r"service account parkwatch-control-plane: password (\S+)", out)[1]  # type: ignore[index]
    conf = (SHIPPED_CONF.read_text().replace("/etc/mosquitto/parkwatch", str(etc))
            .replace("listener 8883", f"listener {broker_port} 127.0.0.1")
            .replace("persistence true", "persistence false"))
    conf_path = tmp_path / "mosquitto.conf"
    conf_path.write_text(conf + f"user {getpass.getuser()}\n")  # not "mosquitto": tmp is ours
    broker = Mosquitto(port=broker_port, config=conf_path, log=tmp_path / "mosquitto.log")
    broker.start()
    serve = agent = None
    try:
        # Step 6: serve; /healthz 200 with MQTT connected.
        serve = _process(["serve", "-c", str(cp_toml)], env, tmp_path / "serve.log")

        def healthy() -> dict[str, object] | None:
            try:
                answer = httpx.get(f"{api}/healthz", timeout=2)
            except httpx.HTTPError:
                return None
            return answer.json() if answer.status_code == 200 else None

        health = wait_for(healthy, timeout=60, what="/healthz 200", interval=0.3)
        assert health["mqtt"] == "connected" and health["database"] == "ok", (
            (tmp_path / "serve.log").read_text()[-3000:])
        # Step 7: a device whose camera URL carries RTSP credentials, and one the agent
        # below can read (a file: there is no camera here); then logins again + reload.
        ops = {**env, "PARKWATCH_API_URL": api}
        rtsp = "rtsp://viewer:cam-secret@10.0.0.5:554/Streaming/Channels/102"
        cli(["devices", "create", "gate-2", "--label", "park=riverside", "--camera",
             f"gate={rtsp}", "--out", str(tmp_path / "gate-2.toml")], ops)
        assert tomllib.loads((tmp_path / "gate-2.toml").read_text())["cameras"][0][
            "source"] == rtsp
        assert stat.S_IMODE((tmp_path / "gate-2.toml").stat().st_mode) == 0o600
        clip = write_video(tmp_path / "clip.avi", frames=40)
        agent_toml = tmp_path / "agent.toml"
        cli(["devices", "create", "gate-1", "--label", "park=riverside", "--camera",
             f"gate={clip}", "--agent-data-dir", str(tmp_path / "agent"),
             "--out", str(agent_toml)], ops)
        assert "2 device(s)" in cli(["mqtt", "acl", "--out", str(etc), "-c", str(cp_toml),
                                     *SERVICES], env)
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        # Step 8: the CA on the device, `agent check`, the agent.
        text = agent_toml.read_text()
        assert '# mqtt_ca_file = "/etc/parkwatch/ca.pem"' in text
        agent_toml.write_text(re.sub(r"^# mqtt_ca_file = .*$", f'mqtt_ca_file = "{etc / "ca.pem"}"',
                                     text, flags=re.M))
        agent_env = {k: v for k, v in env.items() if not k.startswith("PARKWATCH_")}
        check = CliRunner().invoke(root_app, ["agent", "check", "--config", str(agent_toml)],
                                   env=agent_env)
        assert check.exit_code == 0, check.output
        found = {ln.strip().split(":")[0]: ln for ln in check.output.splitlines()}
        for subject in ("data folder", "broker", "API", "camera gate"):
            assert ": ok: " in found[subject], check.output
        agent_env["PARKWATCH_AGENT_WINDOW_SECONDS"] = "5"  # the wave's gates read windows
        agent = _process(["agent", "run", "--config", str(agent_toml)], agent_env,
                         tmp_path / "agent.log")

        def online() -> bool:
            result = CliRunner().invoke(root_app, ["devices", "show", "gate-1", "--json"],
                                        env=ops)
            return result.exit_code == 0 and json.loads(result.output)["online"]

        wait_for(online, timeout=60, what="gate-1 online", interval=0.5)
        approved_rollout(api, data, ops)
    finally:
        for proc in (agent, serve):
            if proc is not None:
                _stop(proc)
        broker.stop()
