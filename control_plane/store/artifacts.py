"""Content-addressed artifact storage: the ``ArtifactStore`` interface, and its folder
implementation (files named by their sha256; ``s3_artifacts`` is the bucket one).

A hash is validated (64 lowercase hex) before any filesystem access, so a
malformed or hostile name (``../``, ``%2e%2e``) can only ever be "not found".
Writes go to a temp file in the same folder and are renamed into place, so a
reader never sees a partial artifact and a crash leaves no half-written one.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import InvalidRequestError, NotFoundError

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def is_sha256(value: str) -> bool:
    return bool(_SHA256_RE.fullmatch(value))


def check_sha256(value: str) -> str:
    """Return ``value`` if it is 64 lowercase hex chars; else NotFoundError."""
    if not is_sha256(value):
        raise NotFoundError(f"no artifact {value[:80]!r}: artifacts are named by 64 hex chars")
    return value


class BlobWriter(Protocol):
    """An upload in progress; ``commit`` checks the hash and makes it visible."""

    def write(self, chunk: bytes) -> None: ...
    def commit(self, expected_sha256: str | None = None) -> tuple[str, int]: ...
    def abort(self) -> None: ...


class ArtifactStore(Protocol):
    """Where artifacts live: a (shared) folder, or an S3-compatible bucket.

    ``commit`` returns only once the artifact is durably stored, so what the registry
    records afterwards is always there; ``path`` gives a local file of an artifact's
    bytes (the bucket store's is a copy it verified against the name).
    """

    def begin(self, max_bytes: int | None = None) -> BlobWriter: ...
    def put(
        self, chunks: Iterable[bytes], expected_sha256: str | None = None
    ) -> tuple[str, int]: ...
    def exists(self, sha256: str) -> bool: ...
    def delete(self, sha256: str) -> None: ...
    def size(self, sha256: str) -> int: ...
    def path(self, sha256: str) -> Path: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def read_range(self, sha256: str, start: int, end: int) -> bytes: ...


class _LocalWriter:
    def __init__(self, root: Path, max_bytes: int | None) -> None:
        self._root = root
        self._max = max_bytes
        fd, name = tempfile.mkstemp(prefix=".upload-", dir=root)
        self._tmp = Path(name)
        self._fh: BinaryIO | None = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, chunk: bytes) -> None:
        if self._fh is None:
            raise RuntimeError("upload already finished")
        self._size += len(chunk)
        if self._max is not None and self._size > self._max:
            self.abort()
            raise InvalidRequestError(
                f"artifact is over the limit of {self._max} bytes (max_artifact_bytes)"
            )
        self._hash.update(chunk)
        self._fh.write(chunk)

    def commit(self, expected_sha256: str | None = None) -> tuple[str, int]:
        if self._fh is None:
            raise RuntimeError("upload already finished")
        digest = self._hash.hexdigest()
        if expected_sha256 is not None and expected_sha256.lower() != digest:
            self.abort()
            raise InvalidRequestError(
                f"upload has sha256 {digest}, not {expected_sha256} as X-Content-Sha256 says; "
                "the file changed or was cut off: upload it again"
            )
        if self._size == 0:
            self.abort()
            raise InvalidRequestError("empty upload: send the artifact bytes as the body")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        final = self._root / digest
        if final.exists():  # same content already stored: keep the first copy
            self._tmp.unlink(missing_ok=True)
        else:
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, final)
            _fsync_dir(self._root)
        return digest, self._size

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)


def write_all(
    writer: BlobWriter, chunks: Iterable[bytes], expected_sha256: str | None
) -> tuple[str, int]:
    """Write ``chunks`` and commit; nothing stays behind when a chunk fails."""
    try:
        for chunk in chunks:
            writer.write(chunk)
    except BaseException:
        writer.abort()
        raise
    return writer.commit(expected_sha256)


def read_file_range(path: Path, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of a file."""
    with path.open("rb") as fh:
        fh.seek(start)
        return fh.read(max(0, end - start))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalContentStore:
    """Artifacts as files ``<root>/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def begin(self, max_bytes: int | None = None) -> BlobWriter:
        return _LocalWriter(self.root, max_bytes)

    def put(self, chunks: Iterable[bytes], expected_sha256: str | None = None) -> tuple[str, int]:
        return write_all(self.begin(), chunks, expected_sha256)

    def path(self, sha256: str) -> Path:
        """The file of an existing artifact; NotFoundError for a bad or unknown hash."""
        check_sha256(sha256)
        path = self.root / sha256
        if not path.is_file():
            raise NotFoundError(f"no artifact {sha256}: upload it with POST /api/v1/artifacts")
        return path

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and (self.root / sha256).is_file()

    def delete(self, sha256: str) -> None:
        """Remove an artifact (gone already is fine): the caller checked nothing uses it."""
        (self.root / check_sha256(sha256)).unlink(missing_ok=True)

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def read_range(self, sha256: str, start: int, end: int) -> bytes:
        return read_file_range(self.path(sha256), start, end)
