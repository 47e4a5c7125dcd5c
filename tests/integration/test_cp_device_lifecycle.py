"""A device's life after provisioning, with the real broker where credentials matter:
re-issued credentials (rotation, new hardware) lock the old token out of the API at once
and the old broker password out after `mqtt acl` + reload; a decommissioned device is
locked out of both; a re-issue brings it back; its id, labels and audit trail stay."""

from __future__ import annotations

import getpass
import threading
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from control_plane.api import create_app
from control_plane.cli import app as cp_cli
from control_plane.config import ControlPlaneSettings
from control_plane.store.keys import Keyring
from tests.conftest import REPO_ROOT, Mosquitto, free_port, wait_for

API = "/api/v1"
SHIPPED_CONF = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cp_cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def broker_accepts(port: int, ca: Path, username: str, password: str) -> bool:
    """Connect over TLS with this login; True on a successful CONNACK."""
    answer: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(_c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        answer["failed"] = reason.is_failure
        done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(username, password)
    client.tls_set(ca_certs=str(ca))
    client.on_connect = on_connect
    client.connect("localhost", port)
    client.loop_start()
    try:
        assert done.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return not answer["failed"]


class Site:
    def __init__(self, tmp: Path) -> None:
        self.etc, self.port = tmp / "etc", free_port()
        self.cp_config = tmp / "cp.toml"
        self.cp_config.write_text(f'data_dir = "{tmp / "cp"}"\n'
                                  f'mqtt_url = "mqtts://localhost:{self.port}"\n'
                                  "mqtt_device_credentials = true\n")
        self.settings = ControlPlaneSettings.load(self.cp_config)
        Keyring(self.settings.keys_dir).init()
        self.broker: Mosquitto | None = None

    def regenerate(self) -> None:
        """`parkwatch mqtt acl` and a reload (SIGHUP), as docs/operations.md says."""
        _cli("mqtt", "acl", "--out", str(self.etc), "--config", str(self.cp_config))
        if self.broker is not None and self.broker.proc is not None:
            self.broker.proc.send_signal(1)  # SIGHUP

    def start_broker(self, tmp: Path) -> None:
        _cli("mqtt", "dev-certs", "--out", str(self.etc), "--host", "localhost")
        self.regenerate()
        conf = (SHIPPED_CONF.read_text().replace("/etc/mosquitto/parkwatch", str(self.etc))
                .replace("listener 8883", f"listener {self.port} 127.0.0.1")
                .replace("persistence true", "persistence false"))
        path = tmp / "mosquitto.conf"
        path.write_text(conf + f"user {getpass.getuser()}\n")
        self.broker = Mosquitto(port=self.port, config=path, log=tmp / "mosquitto.log")
        self.broker.start()

    def accepts(self, login: dict[str, Any]) -> bool:
        return broker_accepts(self.port, self.etc / "ca.pem", login["mqtt_username"],
                              login["mqtt_password"])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    try:
        yield site
    finally:
        if site.broker is not None:
            site.broker.stop()


def test_reissue_decommission_and_back(site: Site, tmp_path: Path) -> None:
    with TestClient(create_app(site.settings, enable_mqtt=False)) as client:
        admin = {"Authorization": f"Bearer {site.settings.admin_token_path.read_text().strip()}"}
        made = client.post(f"{API}/devices", headers=admin,
                           json={"device_id": "cam-a", "labels": {"park": "p1"}})
        assert made.status_code == 201, made.text
        first = tomllib.loads(made.json()["agent_config_toml"])
        site.start_broker(tmp_path)
        assert site.accepts(first)

        def api_status(config: dict[str, Any]) -> int:
            return client.get(f"{API}/releases/none/manifest",
                              headers={"Authorization": f"Bearer {config['api_token']}"}
                              ).status_code

        assert api_status(first) == 404  # accepted; no such release
        # Hardware replaced: new credentials under the same id.
        again = client.post(f"{API}/devices/cam-a/reissue", headers=admin,
                            json={"reason": "hardware replaced after a storm",
                                  "cameras": [{"camera_id": "gate", "source": "rtsp://x/1"}]})
        assert again.status_code == 200, again.text
        second = tomllib.loads(again.json()["agent_config_toml"])
        assert second["device_id"] == "cam-a" and second["cameras"][0]["camera_id"] == "gate"
        assert second["mqtt_password"] != first["mqtt_password"]
        assert api_status(first) == 401 and api_status(second) == 404
        site.regenerate()
        wait_for(lambda: not site.accepts(first), timeout=10, what="old login refused",
                 interval=0.2)
        assert site.accepts(second)
        # Decommissioned: locked out of both; the device and its history stay.
        gone = client.post(f"{API}/devices/cam-a/decommission", headers=admin,
                           params={"reason": "park closed"})
        assert gone.status_code == 200 and gone.json()["decommissioned_at"] is not None
        assert gone.json()["labels"] == {"park": "p1"}
        assert api_status(second) == 401
        site.regenerate()
        wait_for(lambda: not site.accepts(second), timeout=10, what="login removed",
                 interval=0.2)
        # Back in service.
        back = client.post(f"{API}/devices/cam-a/reissue", headers=admin,
                           json={"reason": "park reopened"})
        third = tomllib.loads(back.json()["agent_config_toml"])
        assert client.get(f"{API}/devices/cam-a", headers=admin).json()[
            "decommissioned_at"] is None
        site.regenerate()
        wait_for(lambda: site.accepts(third), timeout=10, what="new login", interval=0.2)
        trail = client.get(f"{API}/audit", headers=admin,
                           params={"target": "device:cam-a", "limit": 50}).json()["items"]
        actions = [e["action"] for e in trail]
        assert {"device.provision", "device.reissue", "device.decommission"} <= set(actions)
        reasons = {e["detail"].get("reason") for e in trail}
        assert {"hardware replaced after a storm", "park closed", "park reopened"} <= reasons


def test_reissue_of_an_unknown_device_names_the_fix(site: Site) -> None:
    with TestClient(create_app(site.settings, enable_mqtt=False)) as client:
        admin = {"Authorization": f"Bearer {site.settings.admin_token_path.read_text().strip()}"}
        answer = client.post(f"{API}/devices/nope/reissue", headers=admin,
                             json={"reason": "rotation"})
        assert answer.status_code == 404 and "devices create" in answer.json()["detail"]
        dup = client.post(f"{API}/devices", headers=admin, json={"device_id": "cam-b"})
        assert dup.status_code == 201
        dup = client.post(f"{API}/devices", headers=admin, json={"device_id": "cam-b"})
        assert dup.status_code == 409 and "devices reissue cam-b" in dup.json()["detail"]
