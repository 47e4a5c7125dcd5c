"""The release-signing keyring under ``<data_dir>/keys``.

``<key_id>.pem`` holds a private key (mode 0600), ``<key_id>.pub.pem`` its
public key, and ``active`` names the key that signs new releases. Rotation
adds a key and makes it active; old keys stay, so agents can keep trusting
releases signed before the rotation.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import (
    generate_signing_key,
    key_id_of,
    load_private_key,
    public_key_pem,
    save_private_key,
)

from ..errors import ConfigError

log = logging.getLogger(__name__)
_ACTIVE = "active"


class Keyring:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def initialised(self) -> bool:
        return (self.root / _ACTIVE).is_file()

    def init(self) -> str:
        """Create the first signing key if there is none; return the active key id."""
        if self.initialised:
            return self.active_key_id()
        return self.rotate()

    def rotate(self) -> str:
        """Create a new key and make it active; older keys stay for verification."""
        key = generate_signing_key()
        key_id = key_id_of(key.public_key())
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        save_private_key(self.root / f"{key_id}.pem", key)
        (self.root / f"{key_id}.pub.pem").write_bytes(public_key_pem(key))
        tmp = self.root / f".{_ACTIVE}.tmp"
        tmp.write_text(key_id + "\n")
        os.replace(tmp, self.root / _ACTIVE)
        log.info("new signing key is active", extra={"key_id": key_id})
        return key_id

    def active_key_id(self) -> str:
        try:
            key_id = (self.root / _ACTIVE).read_text().strip()
        except FileNotFoundError:
            raise ConfigError(
                f"no signing key in {self.root}: run `parkwatch keys init` "
                "(or start `parkwatch serve`, which creates one)"
            ) from None
        if not key_id:
            raise ConfigError(f"{self.root / _ACTIVE} is empty: run `parkwatch keys init`")
        return key_id

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        key_id = self.active_key_id()
        key = load_private_key(self.root / f"{key_id}.pem")
        if key_id_of(key.public_key()) != key_id:
            raise ConfigError(f"{self.root / (key_id + '.pem')} does not hold key {key_id}")
        return key_id, key

    def public_pem(self, key_id: str | None = None) -> bytes:
        key_id = key_id or self.active_key_id()
        path = self.root / f"{key_id}.pub.pem"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no public key {key_id} in {self.root}") from None

    def public_pems(self) -> dict[str, bytes]:
        """Every public key in the ring (active and retired), by key id, active first."""
        if not self.root.is_dir():
            return {}
        found = {
            p.name.removesuffix(".pub.pem"): p.read_bytes()
            for p in sorted(self.root.glob("*.pub.pem"))
        }
        if self.initialised:
            active = self.active_key_id()
            if active in found:
                found = {active: found[active], **{k: v for k, v in found.items() if k != active}}
        return found
