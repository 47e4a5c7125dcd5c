"""Property-based fuzzing of what an agent trusts: manifest verification and the artifact
download (over real HTTP, with Range resumes). A tampered manifest or artifact is refused
with a ReleaseError; what is accepted is exactly what was signed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.errors import ReleaseError
from edge_agent.releases import ReleaseStore
from protocols import ProtocolError, decode, generate_signing_key, verify_manifest
from protocols.manifest import SignedManifest
from protocols.signing import key_id_of
from tests.agent_kit import TOKEN, Release, ReleaseServer, make_release, release_server
from tests.fuzz.strategies import FUZZ, mutated

KEY = generate_signing_key()
TRUSTED = {key_id_of(KEY.public_key()): KEY.public_key()}


@pytest.fixture(scope="module")
def release() -> Release:
    return make_release(KEY, "r1")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[ReleaseStore, ReleaseServer]]:
    with release_server() as server:
        yield ReleaseStore(tmp_path / "agent", server.url, TOKEN, TRUSTED, timeout=10), server


def test_tampered_manifests_are_refused(release: Release) -> None:
    signed = release.signed.model_dump_json(by_alias=True).encode()

    @FUZZ
    @given(raw=mutated(signed))
    def check(raw: bytes) -> None:
        try:
            manifest = verify_manifest(decode(SignedManifest, raw), TRUSTED)
        except ProtocolError:
            return
        assert manifest == release.manifest  # accepted only when what was signed is intact

    check()


def test_fetched_manifests_are_verified(
    release: Release, store: tuple[ReleaseStore, ReleaseServer]
) -> None:
    agent, server = store
    signed = release.signed.model_dump_json(by_alias=True).encode()
    refused = accepted = 0

    @FUZZ
    @given(raw=mutated(signed))
    def check(raw: bytes) -> None:
        nonlocal refused, accepted
        server.manifests["r1"] = raw
        try:
            _signed, manifest = agent.fetch_manifest("r1")
        except ReleaseError:
            refused += 1
            return
        accepted += 1
        assert manifest == release.manifest

    check()
    print(f"injected: mutated manifests over HTTP -> observed {refused} refused, "
          f"{accepted} accepted (all identical to the signed one)")
    assert refused > 0


@st.composite
def partials(draw: st.DrawFn, model: bytes) -> bytes | None:
    """What an earlier, interrupted download may have left in the ``.part`` file."""
    how = draw(st.sampled_from(["none", "prefix", "garbage", "longer"]))
    if how == "none":
        return None
    if how == "prefix":
        return model[: draw(st.integers(0, len(model)))]
    if how == "garbage":
        return draw(st.binary(min_size=1, max_size=len(model)))
    return model + draw(st.binary(min_size=1, max_size=64))


def test_downloads_accept_only_the_signed_bytes(
    release: Release, store: tuple[ReleaseStore, ReleaseServer]
) -> None:
    agent, server = store
    model = release.model
    part = agent.downloads / f"{release.sha256}.part"
    outcomes: dict[str, int] = {}

    @FUZZ
    @given(served=mutated(model, is_json=False), left=partials(model))
    def check(served: bytes, left: bytes | None) -> None:
        server.artifacts[release.sha256] = served
        part.unlink(missing_ok=True)
        if left is not None:
            part.write_bytes(left)
        try:
            path = agent.download_artifact(release.manifest)
        except ReleaseError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            if part.exists():  # kept only to resume: never longer than the artifact
                assert part.stat().st_size < len(model)
            return
        outcomes["verified"] = outcomes.get("verified", 0) + 1
        assert hashlib.sha256(path.read_bytes()).hexdigest() == release.sha256

    check()
    print(f"injected: mutated artifacts and leftover partial files -> observed {outcomes}")
    assert outcomes.get("verified", 0) > 0 and len(outcomes) > 1
