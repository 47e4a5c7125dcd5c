"""The shipped Mosquitto config (deploy/mosquitto) with TLS, per-device passwords and ACLs
written by `parkwatch mqtt acl`: devices stay inside their own topics, strangers stay out,
and the real agent link and control-plane adapter work through it."""

from __future__ import annotations

import getpass
import json
import signal
import ssl
import threading
import time
import tomllib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session, select
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from control_plane.api import create_app
from control_plane.cli import app as cp_cli
from control_plane.config import ControlPlaneSettings
from control_plane.ingest.adapter import MqttAdapter
from control_plane.store.db import create_db_engine
from control_plane.store.keys import Keyring
from control_plane.store.models import TelemetryWindowRecord
from control_plane.testing import telemetry_window
from edge_agent.config import load_settings
from edge_agent.mqtt import MqttLink
from edge_agent.outbox import Outbox
from protocols import DesiredState, decode, desired_topic, encode, telemetry_topic
from tests.conftest import REPO_ROOT, Mosquitto, free_port

pytestmark = pytest.mark.fault  # hostile clients are injected faults too
API = "/api/v1"
SHIPPED_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
SERVICE = "parkwatch-control-plane"


@dataclass
class SecureBroker:
    broker: Mosquitto
    dir: Path
    ca: Path
    logins: dict[str, str]  # username -> password (devices and the service account)
    cp_config: Path
    settings: ControlPlaneSettings
    agent_configs: dict[str, str]
    admin: dict[str, str]

    @property
    def port(self) -> int:
        return self.broker.port


def _run_cli(*args: str) -> str:
    result = CliRunner().invoke(cp_cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureBroker]:
    etc = tmp_path / "etc"
    port = free_port()
    data = tmp_path / "cp"
    cp_config = tmp_path / "cp.toml"
    cp_config.write_text(
        f'data_dir = "{data}"\nmqtt_url = "mqtts://localhost:{port}"\n'
        "mqtt_device_credentials = true\n"
    )
    settings = ControlPlaneSettings.load(cp_config)
    Keyring(settings.keys_dir).init()
    configs: dict[str, str] = {}
    with TestClient(create_app(settings, enable_mqtt=False)) as client:
        admin = {"Authorization": f"Bearer {settings.admin_token_path.read_text().strip()}"}
        for device_id in ("cam-a", "cam-b"):
            r = client.post(f"{API}/devices", json={"device_id": device_id}, headers=admin)
            assert r.status_code == 201, r.text
            configs[device_id] = r.json()["agent_config_toml"]
    _run_cli("mqtt", "dev-certs", "--out", str(etc), "--host", "localhost")
    out = _run_cli("mqtt", "acl", "--out", str(etc), "--config", str(cp_config),
                   "--show-service-password")
    assert "2 device(s)" in out
    service_pw = out.split(f"service account {SERVICE}: password ")[1].split()[0]
    logins = {SERVICE: service_pw}
    for device_id, text in configs.items():
        conf = tomllib.loads(text)
        assert conf["mqtt_username"] == device_id
        logins[device_id] = conf["mqtt_password"]
    shipped = SHIPPED_CONF.read_text()
    assert "allow_anonymous false" in shipped and "acl_file" in shipped
    conf_text = (
        shipped.replace("/etc/mosquitto/parkwatch", str(etc))
        .replace("listener 8883", f"listener {port} 127.0.0.1")
        .replace("persistence true", "persistence false")
    )
    # Started as root, Mosquitto drops to user "mosquitto", which cannot read a test's
    # private temp dir; stay the user running the tests instead.
    conf_text += f"user {getpass.getuser()}\n"
    conf_path = tmp_path / "mosquitto.conf"
    conf_path.write_text(conf_text)
    broker = Mosquitto(port=port, config=conf_path, log=tmp_path / "mosquitto.log")
    broker.start()
    try:
        yield SecureBroker(broker, etc, etc / "ca.pem", logins, cp_config, settings, configs,
                           admin)
    finally:
        broker.stop()


class Client:
    """A paho client over TLS that records its CONNACK, SUBACKs and messages."""

    def __init__(self, port: int, username: str | None, password: str | None,
                 ca: Path | None) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{username}")
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.tls_set(ca_certs=str(ca) if ca else None, cert_reqs=ssl.CERT_REQUIRED)
        self.connack: Any = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.suback: list[Any] = []
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda _c, _u, _mid, codes, _p: self.suback.extend(codes)
        self.client.connect("localhost", port)
        self.client.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connack = reason
        if not reason.is_failure:
            self.connected.set()
        self.answered.set()

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def subscribe(self, topic: str) -> None:
        n = len(self.suback)
        self.client.subscribe(topic, qos=1)
        _wait(lambda: len(self.suback) > n, f"SUBACK for {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(check: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _login(sb: SecureBroker, username: str) -> Client:
    c = Client(sb.port, username, sb.logins[username], sb.ca)
    assert c.answered.wait(10), "no CONNACK"
    assert c.connected.is_set(), f"{username} refused: {c.connack}"
    return c


def _refused(sb: SecureBroker, username: str | None, password: str | None) -> Any:
    c = Client(sb.port, username, password, sb.ca)
    try:
        assert c.answered.wait(10), "no CONNACK"
        return c.connack
    finally:
        c.close()


def _desired(device_id: str, revision: int) -> bytes:
    return encode(DesiredState(device_id=device_id, revision=revision, release_id=None))


def test_strangers_are_refused(secure: SecureBroker) -> None:
    anon = _refused(secure, None, None)
    wrong = _refused(secure, "cam-a", secure.logins["cam-b"])
    ghost = _refused(secure, "ghost", "whatever")
    print(f"injected: anonymous, wrong password, unknown user -> observed CONNACK "
          f"{anon}, {wrong}, {ghost}")
    for reason in (anon, wrong, ghost):
        assert reason.is_failure
    # A client that does not trust the broker's CA fails the TLS handshake.
    untrusting = paho.Client(CallbackAPIVersion.VERSION2, client_id="untrusting")
    untrusting.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    with pytest.raises(ssl.SSLError) as err:
        untrusting.connect("localhost", secure.port)
    print(f"injected: client without the CA -> observed {type(err.value).__name__}")


def test_device_cannot_publish_as_another_device(secure: SecureBroker) -> None:
    service = _login(secure, SERVICE)
    cam_a = _login(secure, "cam-a")
    try:
        service.subscribe("parkwatch/v1/devices/+/telemetry")
        service.subscribe("parkwatch/v1/devices/+/desired")  # denied: the service only writes
        cam_a.publish(telemetry_topic("cam-b"), encode(telemetry_window("cam-b", 1)))
        cam_a.publish(telemetry_topic("cam-a"), encode(telemetry_window("cam-a", 1)))
        # Mosquitto delivers one publisher's messages in order: once the marker is in,
        # a forged message that got through would be there already.
        _wait(lambda: any(t == telemetry_topic("cam-a") for t, _ in service.messages),
              "cam-a's own telemetry")
        topics = [t for t, _ in service.messages]
        print(f"injected: cam-a publishes telemetry as cam-b -> observed "
              f"service received {topics}")
        assert topics == [telemetry_topic("cam-a")]
    finally:
        cam_a.close()
        service.close()


def test_device_cannot_read_another_devices_desired_state(secure: SecureBroker) -> None:
    service = _login(secure, SERVICE)
    cam_a = _login(secure, "cam-a")
    try:
        # Only the control plane writes desired states; a device forging its own (retained)
        # would be handed it back on subscribing.
        cam_a.publish(desired_topic("cam-a"), _desired("cam-a", 99), retain=True)
        cam_a.subscribe(desired_topic("cam-b"))
        cam_a.subscribe("parkwatch/v1/devices/+/desired")
        cam_a.subscribe("parkwatch/v1/#")
        cam_a.subscribe(desired_topic("cam-a"))
        service.publish(desired_topic("cam-b"), _desired("cam-b", 1), retain=True)
        service.publish(desired_topic("cam-a"), _desired("cam-a", 1), retain=True)
        _wait(lambda: any(t == desired_topic("cam-a") for t, _ in cam_a.messages),
              "cam-a's own desired state")
        topics = {t for t, _ in cam_a.messages}
        revisions = [decode(DesiredState, p).revision for _, p in cam_a.messages]
        print(f"injected: cam-a writes its own desired (rev 99), subscribes to cam-b's desired, "
              f"+/desired and # -> observed SUBACKs {[str(c) for c in cam_a.suback]}, "
              f"received {sorted(topics)} with revisions {revisions}")
        assert topics == {desired_topic("cam-a")}
        assert set(revisions) == {1}
    finally:
        cam_a.close()
        service.close()


def test_agent_and_control_plane_work_through_tls_and_acls(
    secure: SecureBroker, tmp_path: Path
) -> None:
    """The real agent link (device login) and the control-plane adapter (service login)."""
    agent_conf = tmp_path / "agent.toml"
    text = secure.agent_configs["cam-a"].replace(
        "# mqtt_ca_file = \"/etc/parkwatch/ca.pem\"", f'mqtt_ca_file = "{secure.ca}"'
    )
    agent_conf.write_text(text.replace('data_dir = "/var/lib/parkwatch-agent"',
                                       f'data_dir = "{tmp_path / "agent"}"'))
    agent = load_settings(agent_conf)
    assert agent.mqtt.tls and agent.mqtt.ca_file == secure.ca
    settings = ControlPlaneSettings.load(
        secure.cp_config, mqtt_username=SERVICE, mqtt_password=secure.logins[SERVICE],
        mqtt_ca_file=secure.ca,
    )
    engine = create_db_engine(settings.resolved_database_url)
    adapter = MqttAdapter(settings.broker_url, engine, client_id="ignored-by-broker",
                          security=settings.mqtt_security())
    outbox = Outbox(tmp_path / "outbox.db")
    desired: list[DesiredState] = []
    link = MqttLink(agent.device_id, agent.mqtt, outbox, desired.append, "test")
    adapter.start()
    link.start()
    try:
        assert adapter.wait_connected(15), "control plane could not log in"
        _wait(lambda: link.connected, "agent login")
        outbox.put("telemetry", telemetry_topic("cam-a"), encode(telemetry_window("cam-a", 5)))
        _wait(lambda: link.acked == 1, "PUBACK of the agent's telemetry")
        with Session(engine) as session:
            _wait(lambda: session.exec(select(TelemetryWindowRecord)).first() is not None,
                  "telemetry stored by the control plane")
        adapter.publish_desired(DesiredState(device_id="cam-a", revision=7, release_id=None))
        _wait(lambda: bool(desired), "desired state at the agent")
        print(f"injected: nothing (positive control) -> observed agent acked {link.acked} "
              f"window(s), agent got desired revision {desired[0].revision}")
        assert desired[0].revision == 7
    finally:
        link.stop(flush_seconds=0)
        adapter.stop()
        outbox.close()
        engine.dispose()


def test_revoked_device_loses_its_broker_login(secure: SecureBroker) -> None:
    listing = _run_cli("tokens", "list", "--json", "--config", str(secure.cp_config))
    token_id = next(t["id"] for t in json.loads(listing)["items"] if t["device_id"] == "cam-b")
    _run_cli("tokens", "revoke", str(token_id), "--config", str(secure.cp_config))
    out = _run_cli("mqtt", "acl", "--out", str(secure.dir), "--config", str(secure.cp_config))
    assert "1 device(s)" in out
    assert secure.broker.proc is not None
    secure.broker.proc.send_signal(signal.SIGHUP)  # Mosquitto re-reads passwd and acl

    def refused() -> bool:
        return bool(_refused(secure, "cam-b", secure.logins["cam-b"]).is_failure)

    _wait(refused, "cam-b refused after revocation")
    _login(secure, "cam-a").close()
    print("injected: cam-b's token revoked, `mqtt acl` + SIGHUP -> observed cam-b refused, "
          "cam-a still admitted")


def test_mutual_tls_refuses_a_client_without_a_certificate(
    secure: SecureBroker, tmp_path: Path
) -> None:
    """With `require_certificate true` (the shipped config's switch), the password alone
    is not enough; the agent's mqtt_client_cert/key get it in."""
    _run_cli("mqtt", "dev-certs", "--out", str(secure.dir), "--host", "localhost",
             "--client", "cam-a")
    secure.broker.stop()
    conf = secure.broker.config.read_text()
    assert "require_certificate false" in conf
    secure.broker.config.write_text(conf.replace("require_certificate false",
                                                 "require_certificate true"))
    secure.broker.start()
    no_cert = paho.Client(CallbackAPIVersion.VERSION2, client_id="no-cert")
    no_cert.username_pw_set("cam-a", secure.logins["cam-a"])
    no_cert.tls_set(ca_certs=str(secure.ca), cert_reqs=ssl.CERT_REQUIRED)
    refused: Exception | None = None
    answered = threading.Event()
    no_cert.on_connect = lambda *_a: answered.set()
    try:
        no_cert.connect("localhost", secure.port)
        no_cert.loop_start()
        assert not answered.wait(2), "a client without a certificate was admitted"
    except (ssl.SSLError, OSError) as exc:
        refused = exc
    finally:
        no_cert.loop_stop()
    agent_conf = tmp_path / "agent.toml"
    agent_conf.write_text(secure.agent_configs["cam-a"].replace(
        "# mqtt_ca_file = \"/etc/parkwatch/ca.pem\"",
        f'mqtt_ca_file = "{secure.ca}"\nmqtt_client_cert = "{secure.dir / "cam-a.pem"}"\n'
        f'mqtt_client_key = "{secure.dir / "cam-a.key"}"'))
    agent = load_settings(agent_conf)
    outbox = Outbox(tmp_path / "outbox.db")
    link = MqttLink(agent.device_id, agent.mqtt, outbox, lambda _d: None, "test")
    link.start()
    try:
        _wait(lambda: link.connected, "the agent's login with its client certificate")
    finally:
        link.stop(flush_seconds=0)
        outbox.close()
    print(f"injected: require_certificate true, a client with only a password -> observed "
          f"{type(refused).__name__ if refused else 'no CONNACK'}; the agent with its "
          "client certificate connected")
