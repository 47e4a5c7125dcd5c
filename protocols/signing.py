"""Ed25519 signing of release manifests and desired states (docs/architecture.md, "The
trust model").

The signature covers a domain tag (one per kind of payload, so a signature of one kind
never verifies as another) plus the exact bytes that travel, so verification never
depends on re-serialising JSON the same way twice.
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
from .codec import decode, encode
from .manifest import ReleaseManifest, SignedManifest
from .messages import DesiredState, SignedDesiredState

_DOMAIN = b"parkwatch-manifest-v1\n"
_DESIRED_DOMAIN = b"parkwatch-desired-v1\n"


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
    payload = _verified(signed.key_id, signed.payload, signed.signature, _DOMAIN,
                        "manifest", trusted_keys)
    try:
        return decode(ReleaseManifest, payload)
    except ProtocolError as exc:
        raise SignatureError(f"signed payload is not a valid manifest: {exc}") from None


def sign_desired(state: DesiredState, key: Ed25519PrivateKey) -> SignedDesiredState:
    payload = encode(state)
    return SignedDesiredState(
        key_id=key_id_of(key.public_key()),
        payload=base64.b64encode(payload).decode(),
        signature=base64.b64encode(key.sign(_DESIRED_DOMAIN + payload)).decode(),
    )


def verify_desired(
    signed: SignedDesiredState, trusted_keys: Mapping[str, Ed25519PublicKey]
) -> DesiredState:
    """Check a desired state's signature against the trusted key it names, then parse it."""
    payload = _verified(signed.key_id, signed.payload, signed.signature, _DESIRED_DOMAIN,
                        "desired state", trusted_keys)
    try:
        return decode(DesiredState, payload)
    except ProtocolError as exc:
        raise SignatureError(f"signed payload is not a valid desired state: {exc}") from None


def _verified(key_id: str, payload_b64: str, signature_b64: str, domain: bytes, what: str,
              trusted_keys: Mapping[str, Ed25519PublicKey]) -> bytes:
    """The payload's bytes once its signature verifies with the trusted key it names."""
    key = trusted_keys.get(key_id)
    if key is None:
        raise SignatureError(
            f"{what} signed with unknown key {key_id}; provision the agent with "
            "that public key (parkwatch keys export) or re-sign it"
        )
    try:
        payload = base64.b64decode(payload_b64, validate=True)
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} payload or signature is not valid base64") from None
    try:
        key.verify(signature, domain + payload)
    except InvalidSignature:
        raise SignatureError(f"{what} signature does not verify with key {key_id}") from None
    return payload
