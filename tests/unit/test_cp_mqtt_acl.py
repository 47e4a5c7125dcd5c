"""Broker credentials: Mosquitto's hash format, derivation and the ACL text."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from control_plane.broker import acl as mqtt_acl
from control_plane.errors import ConfigError


def test_hash_matches_mosquitto_passwd() -> None:
    # `mosquitto_passwd -b -c f dev1 secret` (Mosquitto 2.0.11) wrote this line.
    line = ("$7$101$TuU8SNAOwyEVkiWq$u7nDtO3Re7aAqYiLWMVLG5wB+74hAC3fgoys0r4dWeTvTUZksrKtB28UMF"
            "u17cGhevKuM0jzLuOJbN3wHEmOfA==")
    salt = base64.b64decode("TuU8SNAOwyEVkiWq")
    assert mqtt_acl.mosquitto_hash("secret", salt=salt) == line
    assert mqtt_acl.mosquitto_hash("secret", salt=salt) != mqtt_acl.mosquitto_hash("Secret",
                                                                                   salt=salt)


def test_passwords_depend_on_secret_device_and_token() -> None:
    a, b = b"a" * 32, b"b" * 32
    base = mqtt_acl.derive_password(a, "cam-1", 3)
    assert base == mqtt_acl.derive_password(a, "cam-1", 3)
    assert len({base, mqtt_acl.derive_password(b, "cam-1", 3),
                mqtt_acl.derive_password(a, "cam-2", 3),
                mqtt_acl.derive_password(a, "cam-1", 4)}) == 4


def test_acl_confines_each_device_and_hides_passwords(tmp_path: Path) -> None:
    secret = mqtt_acl.load_secret(tmp_path)
    assert stat.S_IMODE((tmp_path / mqtt_acl.SECRET_FILE).stat().st_mode) == 0o600
    assert mqtt_acl.load_secret(tmp_path) == secret  # stable once created
    accounts = [mqtt_acl.service_account(secret), mqtt_acl.device_account(secret, "cam-1", 1)]
    text = mqtt_acl.acl_file(accounts)
    device_block = text.split("user cam-1\n")[1]
    assert "topic read parkwatch/v1/devices/cam-1/desired" in device_block
    assert "topic write parkwatch/v1/devices/cam-1/telemetry" in device_block
    assert "+" not in device_block and "#" not in device_block
    assert text.split("\n\n")[0].startswith("#")  # no rule before the first user: anonymous
    passwd, acl = mqtt_acl.write_broker_files(tmp_path / "out", accounts)
    for account in accounts:
        assert account.password not in passwd.read_text() + acl.read_text() + repr(account)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o600
    passwd.chmod(0o640)  # the operator lets the broker's group read it
    passwd, _acl = mqtt_acl.write_broker_files(tmp_path / "out", accounts)
    assert stat.S_IMODE(passwd.stat().st_mode) == 0o640


def test_bad_secret_file_names_the_fix(tmp_path: Path) -> None:
    (tmp_path / "mqtt").mkdir()
    (tmp_path / mqtt_acl.SECRET_FILE).write_text("not hex\n")
    with pytest.raises(ConfigError, match="delete it"):
        mqtt_acl.load_secret(tmp_path)
    with pytest.raises(ConfigError, match="mqtt acl"):
        mqtt_acl.load_secret(tmp_path / "none", create=False)
