"""ReleaseStore: verified downloads with Range resume, atomic pointer, fallback on boot."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.errors import DownloadError, ReleaseError, VerificationError
from edge_agent.releases import ReleaseStore
from protocols import generate_signing_key
from protocols.signing import key_id_of
from tests.agent_kit import TOKEN, ReleaseServer, make_release, release_server
from tests.agent_models import build_model


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_signing_key()


@pytest.fixture
def server() -> Iterator[ReleaseServer]:
    with release_server() as srv:
        yield srv


def store_for(tmp_path: Path, server: ReleaseServer, key: Ed25519PrivateKey,
              events: list[tuple[str, str]] | None = None) -> ReleaseStore:
    pub = key.public_key()
    return ReleaseStore(tmp_path, server.url, TOKEN, {key_id_of(pub): pub},
                        on_event=lambda k, rid, d: events.append((k, rid)) if events is not None
                        else None)


def test_install_verifies_and_lays_out_files(tmp_path: Path, server: ReleaseServer,
                                             key: Ed25519PrivateKey) -> None:
    release = make_release(key, "r1")
    server.add(release)
    events: list[tuple[str, str]] = []
    installed = store_for(tmp_path, server, key, events).install("r1")
    assert installed.model_path.read_bytes() == release.model
    assert (tmp_path / "releases" / "r1" / "manifest.json").is_file()
    assert events == [("download_started", "r1"), ("download_verified", "r1")]
    assert not list((tmp_path / "releases" / "downloads").iterdir())


def test_partial_download_resumes_with_range(tmp_path: Path, server: ReleaseServer,
                                             key: Ed25519PrivateKey) -> None:
    release = make_release(key, "r1")
    server.add(release)
    store = store_for(tmp_path, server, key)
    half = len(release.model) // 2
    (store.downloads / f"{release.sha256}.part").write_bytes(release.model[:half])
    store.install("r1")
    assert server.artifact_requests() == [(f"bytes={half}-", 206)]
    assert store.load("r1").model_path.read_bytes() == release.model


def test_a_truncated_transfer_is_kept_for_the_next_attempt(
        tmp_path: Path, server: ReleaseServer, key: Ed25519PrivateKey) -> None:
    release = make_release(key, "r1")
    server.add(release, artifact=release.model[:100])
    store = store_for(tmp_path, server, key)
    with pytest.raises(DownloadError, match="incomplete"):
        store.install("r1")
    server.artifacts[release.sha256] = release.model
    store.install("r1")
    assert server.artifact_requests()[-1] == ("bytes=100-", 206)


def test_altered_artifact_is_refused_and_discarded(tmp_path: Path, server: ReleaseServer,
                                                   key: Ed25519PrivateKey) -> None:
    release = make_release(key, "r1")
    altered = bytearray(release.model)
    altered[-1] ^= 0xFF
    server.add(release, artifact=bytes(altered))
    store = store_for(tmp_path, server, key)
    with pytest.raises(VerificationError, match="sha256 mismatch"):
        store.install("r1")
    assert not (tmp_path / "releases" / "r1").exists()
    assert not list(store.downloads.iterdir())


def test_unknown_signer_is_refused(tmp_path: Path, server: ReleaseServer,
                                   key: Ed25519PrivateKey) -> None:
    server.add(make_release(generate_signing_key(), "r1"))
    with pytest.raises(VerificationError, match="unknown key"):
        store_for(tmp_path, server, key).install("r1")
    assert server.artifact_requests() == []


def test_manifest_for_another_release_is_refused(tmp_path: Path, server: ReleaseServer,
                                                 key: Ed25519PrivateKey) -> None:
    other = make_release(key, "r2")
    server.manifests["r1"] = other.signed.model_dump_json(by_alias=True).encode()
    with pytest.raises(VerificationError, match="is for r2"):
        store_for(tmp_path, server, key).install("r1")


def test_wrong_token_is_a_download_error(tmp_path: Path, server: ReleaseServer,
                                         key: Ed25519PrivateKey) -> None:
    server.add(make_release(key, "r1"))
    pub = key.public_key()
    store = ReleaseStore(tmp_path, server.url, "nope", {key_id_of(pub): pub})
    with pytest.raises(DownloadError, match="401"):
        store.install("r1")


def test_pointer_tracks_current_and_previous(tmp_path: Path, server: ReleaseServer,
                                             key: Ed25519PrivateKey) -> None:
    store = store_for(tmp_path, server, key)
    for rid in ("r1", "r2", "r3"):
        server.add(make_release(key, rid))
        store.install(rid)
        store.activate(rid)
    pointer = store.read_pointer()
    assert (pointer.current, pointer.previous) == ("r3", "r2")
    assert not (tmp_path / "releases" / "r1").exists()  # pruned: only current + previous kept
    release, reason = store.load_active()
    assert release is not None and release.release_id == "r3" and reason is None


def test_crash_during_pointer_write_leaves_the_old_pointer(
        tmp_path: Path, server: ReleaseServer, key: Ed25519PrivateKey) -> None:
    store = store_for(tmp_path, server, key)
    for rid in ("r1", "r2"):
        server.add(make_release(key, rid))
        store.install(rid)
    store.activate("r1")
    # A crash after the temp file was written but before the rename:
    stray = store.pointer_path.with_name(".active.json.deadbeef.tmp")
    stray.write_text(json.dumps({"current": "r2", "previous": "r1"})[:10])
    # ...and one during an install, before the staging folder was renamed.
    (store.root / ".r9.0badf00d.tmp").mkdir()
    again = store_for(tmp_path, server, key)
    assert again.read_pointer().current == "r1"
    assert not stray.exists() and not (store.root / ".r9.0badf00d.tmp").exists()
    release, _ = again.load_active()
    assert release is not None and release.release_id == "r1"


def test_broken_current_falls_back_to_previous(tmp_path: Path, server: ReleaseServer,
                                               key: Ed25519PrivateKey) -> None:
    store = store_for(tmp_path, server, key)
    for rid in ("r1", "r2"):
        server.add(make_release(key, rid))
        store.install(rid)
        store.activate(rid)
    model = store.root / "r2" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-1] + b"\0")
    release, reason = store_for(tmp_path, server, key).load_active()
    assert release is not None and release.release_id == "r1"
    assert reason is not None and "r2" in reason
    assert store.read_pointer().current == "r1"


def test_tampered_installed_manifest_does_not_load(tmp_path: Path, server: ReleaseServer,
                                                   key: Ed25519PrivateKey) -> None:
    store = store_for(tmp_path, server, key)
    server.add(make_release(key, "r1"))
    store.install("r1")
    path = store.root / "r1" / "manifest.json"
    signed = json.loads(path.read_text())
    signed["signature"] = signed["signature"][::-1]
    path.write_text(json.dumps(signed))
    with pytest.raises(ReleaseError):
        store.load("r1")
    # install() repairs it from the control plane
    assert store.install("r1").release_id == "r1"


def test_superseded_partial_downloads_are_removed(tmp_path: Path, server: ReleaseServer,
                                                  key: Ed25519PrivateKey) -> None:
    """Partial downloads of releases no longer wanted do not pile up: at start only the
    newest ``.part`` stays (the one a restart resumes), and a download removes the others."""
    downloads = tmp_path / "releases" / "downloads"
    downloads.mkdir(parents=True)
    stale = [downloads / f"{c * 64}.part" for c in "abc"]
    for age, path in enumerate(stale):
        path.write_bytes(b"x" * 1000)
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    store = store_for(tmp_path, server, key)
    after_start = sorted(p.name for p in downloads.iterdir())
    r1, r2 = make_release(key, "r1"), make_release(key, "r2", build_model(bias=0.5))
    server.add(r1)
    server.add(r2, artifact=r2.model[:100])  # r2's transfer breaks off: kept for resuming
    with pytest.raises(DownloadError):
        store.install("r2")
    after_r2 = sorted(p.name for p in downloads.iterdir())
    store.install("r1")  # supersedes r2
    left = sorted(p.name for p in downloads.iterdir())
    print(f"injected: 3 stale .part files, then r2 broken off and r1 installed -> observed "
          f"{len(after_start)} after start, {after_r2} after r2, {left} after r1")
    assert after_start == [stale[-1].name]
    assert after_r2 == [f"{r2.sha256}.part"]
    assert left == []
