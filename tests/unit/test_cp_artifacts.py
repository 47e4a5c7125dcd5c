"""LocalContentStore: atomic content-addressed writes; bad names are "not found"."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from control_plane.errors import InvalidRequestError, NotFoundError
from control_plane.store.artifacts import LocalContentStore


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = LocalContentStore(tmp_path / "a")
    data = b"onnx" * 1000
    sha, size = store.put([data[:100], data[100:]])
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    assert store.put([data]) == (sha, size)
    assert store.exists(sha) and store.size(sha) == size
    assert store.read_range(sha, 4, 12) == data[4:12]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [sha]  # no temp files left


def test_expected_hash_mismatch_leaves_nothing(tmp_path: Path) -> None:
    store = LocalContentStore(tmp_path)
    with pytest.raises(InvalidRequestError, match="sha256"):
        store.put([b"abc"], expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_size_limit(tmp_path: Path) -> None:
    writer = LocalContentStore(tmp_path).begin(max_bytes=4)
    writer.write(b"1234")
    with pytest.raises(InvalidRequestError, match="over the limit"):
        writer.write(b"5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name",
    ["../etc/passwd", "..", "", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "/" + "0" * 63,
     "0" * 62 + "/.", "%2e%2e%2f"],
)
def test_malformed_names_are_not_found(tmp_path: Path, name: str) -> None:
    store = LocalContentStore(tmp_path / "store")
    (tmp_path / "secret").write_text("x")
    assert not store.exists(name)
    with pytest.raises(NotFoundError):
        store.path(name)


def test_unknown_hash_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="upload it"):
        LocalContentStore(tmp_path).path("ab" * 32)
