"""Ed25519 signing of release manifests (docs/architecture.md, "The trust model").

The signature covers a domain tag plus the exact manifest bytes that travel,
so verification never depends on re-serialising JSON the same way twice.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._errors import ProtocolError, SignatureError
from .codec import decode
from .manifest import ReleaseManifest, SignedManifest

_DOMAIN = b"parkwatch-manifest-v1\n"


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """16 hex chars of the sha256 of the raw public key: names the key in manifests."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return pub.public_bytes(serialization.Encoding.PEM, fmt)


def save_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write the key as PKCS#8 PEM, readable by the owner only, atomically."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"cannot load signing key {path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError("public key is not Ed25519")
    return key


def load_trusted_keys(paths: list[Path]) -> dict[str, Ed25519PublicKey]:
    """Load PEM public keys from files, keyed by key id (old keys stay trusted)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise SignatureError(f"cannot read public key {path}: {exc}") from None
        key = load_public_key(pem)
        keys[key_id_of(key)] = key
    return keys


def canonical_json(manifest: ReleaseManifest) -> bytes:
    data = manifest.model_dump(mode="json", by_alias=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_manifest(manifest: ReleaseManifest, key: Ed25519PrivateKey) -> SignedManifest:
    payload = canonical_json(manifest)
    signature = key.sign(_DOMAIN + payload)
    return SignedManifest(
        key_id=key_id_of(key.public_key()),
        payload=base64.b64encode(payload).decode(),
        signature=base64.b64encode(signature).decode(),
    )


def verify_manifest(
    signed: SignedManifest, trusted_keys: Mapping[str, Ed25519PublicKey]
) -> ReleaseManifest:
    """Check the signature against the trusted key it names, then parse the manifest."""
    key = trusted_keys.get(signed.key_id)
    if key is None:
        raise SignatureError(
            f"manifest signed with unknown key {signed.key_id}; provision the agent with "
            "that public key (parkwatch keys export) or re-sign the release"
        )
    try:
        payload = base64.b64decode(signed.payload, validate=True)
        signature = base64.b64decode(signed.signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("manifest payload or signature is not valid base64") from None
    try:
        key.verify(signature, _DOMAIN + payload)
    except InvalidSignature:
        raise SignatureError(
            f"manifest signature does not verify with key {signed.key_id}"
        ) from None
    try:
        return decode(ReleaseManifest, payload)
    except ProtocolError as exc:
        raise SignatureError(f"signed payload is not a valid manifest: {exc}") from None
