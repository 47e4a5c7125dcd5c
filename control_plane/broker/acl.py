"""Per-device MQTT credentials and the broker's password and ACL files.

A device's MQTT password is derived, not stored: HMAC-SHA256 of a control-plane
secret (``<data_dir>/mqtt/credentials.key``, 0600) over the device id and the id
of its live ``device`` API token. So ``parkwatch mqtt acl`` can rewrite the
broker files from the registry at any time, provisioning can put the password
in the agent config, revoking a device's token removes its broker account on
the next ``mqtt acl``, and rotating the secret changes every password at once.

The password file uses Mosquitto 2's ``$7$`` format (PBKDF2-SHA512, checked
against ``mosquitto_passwd``); the ACL lets a device write only under its own
``devices/{id}/`` and read only its own ``desired`` and ``desired_signed``
(docs/architecture.md, "The wire contract").
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from protocols.topics import TOPIC_ROOT

from ..errors import ConfigError
from ..store.models import ApiToken, Device

SERVICE_ACCOUNT = "parkwatch-control-plane"
SECRET_FILE = Path("mqtt") / "credentials.key"
# Mosquitto's own default; the passwords are 256-bit random, so more rounds would only
# slow every broker connect down without making guessing any harder.
PBKDF2_ROUNDS = 101
_DEVICE_WRITES = ("status", "reported", "telemetry", "events")
_SERVICE_READS = ("status", "reported", "telemetry", "events")
# What the control plane writes to a device.
_DEVICE_READS = ("desired", "desired_signed", "commands")


@dataclass(frozen=True)
class Account:
    """One broker login and what it may do."""

    username: str
    password: str = field(repr=False)
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


def load_secret(data_dir: Path, *, create: bool = True) -> bytes:
    """The credential secret, created (0600) on first use when ``create``."""
    path = data_dir / SECRET_FILE
    try:
        raw = path.read_text().strip()
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"no MQTT credential secret at {path}: run `parkwatch mqtt acl` once"
            ) from None
        return rotate_secret(data_dir)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        secret = bytes.fromhex(raw)
    except ValueError:
        raise ConfigError(f"{path} is not hex: delete it and run `parkwatch mqtt acl`") from None
    if len(secret) < 32:
        raise ConfigError(f"{path} holds fewer than 32 bytes: rotate it with --rotate-secret")
    return secret


def rotate_secret(data_dir: Path) -> bytes:
    """Write a new secret (every derived password changes); return it."""
    path = data_dir / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    secret = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex() + "\n")
    os.replace(tmp, path)
    return secret


def derive_password(secret: bytes, username: str, generation: int) -> str:
    """The broker password of ``username`` for credential ``generation`` (a token id)."""
    mac = hmac.new(secret, f"parkwatch-mqtt\n{username}\n{generation}".encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def mosquitto_hash(password: str, *, salt: bytes | None = None) -> str:
    """``$7$`` PBKDF2-SHA512 hash, the format of Mosquitto 2's password_file."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS, 64)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ROUNDS}${b64(salt).decode()}${b64(digest).decode()}"


def device_topics(device_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(read, write) topic lists of one device."""
    base = f"{TOPIC_ROOT}/devices/{device_id}"
    reads = tuple(f"{base}/{kind}" for kind in _DEVICE_READS)
    return reads, tuple(f"{base}/{kind}" for kind in _DEVICE_WRITES)


def service_account(secret: bytes, username: str = SERVICE_ACCOUNT) -> Account:
    """The control plane's login: reads every device's uplink, writes every desired state."""
    base = f"{TOPIC_ROOT}/devices/+"
    return Account(
        username=username,
        password=derive_password(secret, f"service:{username}", 0),
        read=tuple(f"{base}/{kind}" for kind in _SERVICE_READS),
        write=tuple(f"{base}/{kind}" for kind in _DEVICE_READS),
    )


def live_device_tokens(session: Session) -> dict[str, int]:
    """device id -> id of its newest unrevoked device token (devices without one: absent)."""
    rows = session.exec(
        select(ApiToken.device_id, ApiToken.id)
        .join(Device, col(Device.device_id) == col(ApiToken.device_id))
        .where(col(ApiToken.revoked).is_(False))
        .order_by(col(ApiToken.id))
    ).all()
    return {device_id: int(token_id) for device_id, token_id in rows if device_id and token_id}


def device_account(secret: bytes, device_id: str, token_id: int) -> Account:
    read, write = device_topics(device_id)
    return Account(device_id, derive_password(secret, device_id, token_id), read, write)


def accounts_from_registry(
    session: Session, secret: bytes, services: tuple[str, ...] = (SERVICE_ACCOUNT,)
) -> list[Account]:
    """Every service account, then one account per device with a live token."""
    tokens = live_device_tokens(session)
    clash = sorted(set(services) & set(tokens))
    if clash:
        raise ConfigError(f"service account name(s) {clash} are also device ids: rename them")
    accounts = [service_account(secret, name) for name in services]
    accounts += [device_account(secret, d, t) for d, t in sorted(tokens.items())]
    return accounts


def password_file(accounts: list[Account]) -> str:
    return "".join(f"{a.username}:{mosquitto_hash(a.password)}\n" for a in accounts)


def acl_file(accounts: list[Account]) -> str:
    """Mosquitto ACL: nothing for anonymous (no lines before the first ``user``)."""
    lines = ["# written by `parkwatch mqtt acl` from the device registry; do not edit"]
    for account in accounts:
        lines += ["", f"user {account.username}"]
        both = set(account.read) & set(account.write)
        lines += [f"topic readwrite {t}" for t in account.read if t in both]
        lines += [f"topic read {t}" for t in account.read if t not in both]
        lines += [f"topic write {t}" for t in account.write if t not in both]
    return "\n".join(lines) + "\n"


def write_broker_files(out_dir: Path, accounts: list[Account]) -> tuple[Path, Path]:
    """Write ``passwd`` and ``acl`` atomically (0600 the first time; a re-run keeps the
    group and the group-read bit the operator gave the old files, e.g. ``mosquitto``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("passwd", password_file(accounts)), ("acl", acl_file(accounts))):
        path = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if path.exists():
            old = path.stat()
            with contextlib.suppress(PermissionError):
                os.chown(tmp, -1, old.st_gid)
            os.chmod(tmp, stat.S_IMODE(old.st_mode) & 0o640 | 0o600)
        os.replace(tmp, path)
        written.append(path)
    return written[0], written[1]
