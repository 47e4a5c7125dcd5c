"""Manifest signing: valid signatures verify; any tampering or unknown key is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocols
from protocols import SignatureError, sign_manifest, verify_manifest
from protocols.signing import (
    generate_signing_key,
    key_id_of,
    load_private_key,
    load_trusted_keys,
    public_key_pem,
    save_private_key,
)


def make_manifest() -> protocols.ReleaseManifest:
    hist = protocols.Histogram(edges=[0.0, 0.5, 1.0], counts=[3.0, 7.0])
    return protocols.ReleaseManifest(
        release_id="petnet-v1-abcd",
        model_name="petnet",
        model_version="1",
        labels=["cat", "dog"],
        input=protocols.InputSpec(width=96, height=96),
        outputs=protocols.OutputSpec(embedding_dim=2),
        artifact=protocols.ArtifactRef(sha256="a" * 64, size_bytes=1234),
        reference_profile=protocols.ReferenceProfile(
            sample_count=10,
            class_counts={"cat": 5, "dog": 5},
            confidence=hist,
            input_stats={"brightness": hist},
            embedding_mean=[0.0, 0.0],
            embedding_axes=[[1.0, 0.0]],
            embedding_hists=[hist],
        ),
        golden_inputs=[
            protocols.GoldenInput(name="g0", image_png_b64="AAAA", expected_logits=[0.1, 0.2])
        ],
    )


def test_sign_and_verify(tmp_path: Path) -> None:
    key = generate_signing_key()
    save_private_key(tmp_path / "k.pem", key)
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    key = load_private_key(tmp_path / "k.pem")
    (tmp_path / "pub.pem").write_bytes(public_key_pem(key))
    trusted = load_trusted_keys([tmp_path / "pub.pem"])
    manifest = make_manifest()
    signed = sign_manifest(manifest, key)
    assert signed.key_id == key_id_of(key.public_key())
    assert verify_manifest(signed, trusted) == manifest


def test_old_keys_stay_trusted_after_rotation() -> None:
    old, new = generate_signing_key(), generate_signing_key()
    trusted = {key_id_of(k.public_key()): k.public_key() for k in (old, new)}
    assert verify_manifest(sign_manifest(make_manifest(), old), trusted).release_id


def test_unknown_key_is_refused_with_a_fix() -> None:
    signed = sign_manifest(make_manifest(), generate_signing_key())
    other = generate_signing_key().public_key()
    with pytest.raises(SignatureError, match="unknown key"):
        verify_manifest(signed, {key_id_of(other): other})


def test_tampered_payload_is_refused() -> None:
    key = generate_signing_key()
    signed = sign_manifest(make_manifest(), key)
    data = json.loads(base64.b64decode(signed.payload))
    data["artifact"]["sha256"] = "b" * 64
    forged = signed.model_copy(
        update={"payload": base64.b64encode(json.dumps(data).encode()).decode()}
    )
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest(forged, {signed.key_id: key.public_key()})


@settings(max_examples=200, deadline=None)
@given(
    position=st.integers(0, 10**6),
    bit=st.integers(0, 7),
    field=st.sampled_from(["payload", "signature"]),
)
def test_any_bit_flip_is_refused(position: int, bit: int, field: str) -> None:
    key = _KEY
    raw = bytearray(base64.b64decode(getattr(_SIGNED, field)))
    raw[position % len(raw)] ^= 1 << bit
    forged = _SIGNED.model_copy(update={field: base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(SignatureError):
        verify_manifest(forged, {_SIGNED.key_id: key.public_key()})


_KEY = generate_signing_key()
_SIGNED = sign_manifest(make_manifest(), _KEY)
