"""Keyring: init is idempotent, rotation keeps old public keys, signatures verify."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from control_plane.errors import ConfigError
from control_plane.services.releases import build_manifest
from control_plane.store.keys import Keyring
from control_plane.store.models import ModelVersion
from control_plane.testing import registration
from protocols import ReleaseManifest, load_public_key, verify_manifest
from protocols.signing import sign_manifest


def test_init_rotate_export(tmp_path: Path) -> None:
    ring = Keyring(tmp_path / "keys")
    with pytest.raises(ConfigError, match="keys init"):
        ring.signing_key()
    first = ring.init()
    assert ring.init() == first
    assert stat.S_IMODE((tmp_path / "keys" / f"{first}.pem").stat().st_mode) == 0o600
    second = ring.rotate()
    assert second != first and ring.active_key_id() == second
    assert list(ring.public_pems()) == [second, first]  # active first, old kept
    key_id, _key = ring.signing_key()
    assert key_id == second
    assert load_public_key(ring.public_pem(first))


def test_manifest_signed_with_ring_verifies_with_exported_key(tmp_path: Path) -> None:
    ring = Keyring(tmp_path)
    ring.init()
    spec = registration("petnet", [("a" * 64, 10, "int8"), ("b" * 64, 20, "fp32")])
    row = ModelVersion(model_id=1, number=3, version="3", primary_sha256="a" * 64,
                       spec=spec.model_dump(mode="json"), created_by="t")
    manifest = build_manifest("petnet-v3-0000", "petnet", row)
    assert manifest.fallback_artifact is not None and manifest.fallback_artifact.sha256 == "b" * 64
    key_id, key = ring.signing_key()
    signed = sign_manifest(manifest, key)
    pub = load_public_key(ring.public_pem())
    assert isinstance(verify_manifest(signed, {key_id: pub}), ReleaseManifest)
