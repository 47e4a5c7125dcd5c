"""Artifacts in an S3-compatible bucket (``artifact_store = "s3"``): what API replicas and
the worker share when they share no folder.

Each artifact is the object ``<s3_prefix><sha256>``. An upload is spooled into a local
cache folder (hashed on the way, as the folder store does), then PUT with its SHA-256
checksum, so the server itself refuses bytes that changed on the way; ``commit``
returns only after the server has confirmed the object and its size, so the registry
never records (and a release never names) an artifact the bucket lacks. Reads go
through the cache: an object is downloaded once per process and hashed, and one whose
bytes do not match its name is refused (``StorageError``), never served. Every failure
is one line that names the setting to fix; the secret key is never in one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigError, NotFoundError, StorageError
from .artifacts import (
    BlobWriter,
    LocalContentStore,
    check_sha256,
    is_sha256,
    read_file_range,
    write_all,
)

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
# One PUT carries the whole object so that its checksum is the artifact's own sha256;
# S3 takes at most 5 GiB in one PUT.
MAX_OBJECT_BYTES = 5 * 1024**3
_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})
_REFUSED = frozenset({"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                      "InvalidToken", "ExpiredToken", "AuthorizationHeaderMalformed"})
# A server shedding load: the client backed off and tried again, and still got these.
_THROTTLED = frozenset({"503", "SlowDown", "ServiceUnavailable", "Throttling",
                        "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
                        "RequestThrottled", "429"})
_CREDENTIALS = ("s3_access_key_id and s3_secret_access_key (PARKWATCH_S3_ACCESS_KEY_ID, "
                "PARKWATCH_S3_SECRET_ACCESS_KEY)")


@dataclass(frozen=True)
class S3Location:
    """Where the artifacts are, for messages: never a credential."""

    bucket: str
    prefix: str
    endpoint: str  # the URL, or "AWS S3" when none is set

    def key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256}"

    def url(self, sha256: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(sha256)}"


def explain(exc: Exception, where: S3Location, doing: str) -> str:
    """One line for a failed S3 call ``doing``, naming the setting that fixes it."""
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as Unreachable

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (f"no S3 credentials to {doing} in bucket {where.bucket}: set {_CREDENTIALS}, "
                "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, Unreachable | HTTPClientError):  # refused, timed out, cut off
        return (f"cannot reach the S3 endpoint {where.endpoint} to {doing}: is the server "
                "running? check s3_endpoint_url (PARKWATCH_S3_ENDPOINT_URL) and the network")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        if code == "NoSuchBucket" or (code == "404" and doing == "open the bucket"):
            return (f"bucket {where.bucket} does not exist at {where.endpoint}: create it "
                    f"(e.g. `aws s3 mb s3://{where.bucket}`) or fix s3_bucket "
                    "(PARKWATCH_S3_BUCKET)")
        if code in _REFUSED:
            return (f"{where.endpoint} refused the credentials for bucket {where.bucket} "
                    f"({code}) to {doing}: fix {_CREDENTIALS}, or give that key access to "
                    "the bucket")
        if code in _THROTTLED:
            tries = int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1
            return (f"{where.endpoint} is overloaded ({code}) and refused to {doing} "
                    f"{tries} time(s), backing off between tries: try again later, or raise "
                    "s3_max_attempts (PARKWATCH_S3_MAX_ATTEMPTS) to wait longer")
        message = str(error.get("Message", "")) or "no detail"
        return f"{where.endpoint} answered {code} ({message}) to {doing} in {where.url()}"
    return f"S3 at {where.endpoint} failed to {doing}: {exc}"


def _missing(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and (
        str(exc.response.get("Error", {}).get("Code")) in _MISSING)


def _s3_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


class _S3Writer:
    """Spools into the cache, then stores the object; ``commit`` returns once it is stored."""

    def __init__(self, store: S3ArtifactStore, spool: BlobWriter) -> None:
        self._store = store
        self._spool = spool

    def write(self, chunk: bytes) -> None:
        self._spool.write(chunk)

    def commit(self, expected_sha256: str | None = None) -> tuple[str, int]:
        sha256, size = self._spool.commit(expected_sha256)
        self._store.upload_cached(sha256, size)
        return sha256, size

    def abort(self) -> None:
        self._spool.abort()


class S3ArtifactStore:
    """Artifacts as objects ``<prefix><sha256>`` of one bucket, read through a local cache."""

    def __init__(self, client: Any, where: S3Location, cache_dir: Path,
                 cache_max_bytes: int) -> None:
        self._s3 = client
        self.where = where
        self.cache = LocalContentStore(cache_dir)
        self._cache_max = cache_max_bytes

    def check(self) -> None:
        """Reach the bucket and list it, or raise ConfigError in one line naming the fix."""
        doing = "open the bucket"
        try:
            self._s3.head_bucket(Bucket=self.where.bucket)
            doing = "list the artifacts"
            self._s3.list_objects_v2(Bucket=self.where.bucket, Prefix=self.where.prefix,
                                     MaxKeys=1)
        except _s3_errors() as exc:
            raise ConfigError(explain(exc, self.where, doing)) from None

    # -- writing ---------------------------------------------------------------------------
    def begin(self, max_bytes: int | None = None) -> BlobWriter:
        limit = MAX_OBJECT_BYTES if max_bytes is None else min(max_bytes, MAX_OBJECT_BYTES)
        return _S3Writer(self, self.cache.begin(limit))

    def put(self, chunks: Iterable[bytes], expected_sha256: str | None = None
            ) -> tuple[str, int]:
        return write_all(self.begin(), chunks, expected_sha256)

    def upload_cached(self, sha256: str, size: int) -> None:
        """PUT the cached file ``sha256`` with its checksum and confirm it is stored.

        Always PUT, even when the key exists: the content is the same by its name, and a
        damaged object is replaced by the good bytes. On failure the cached copy goes
        too, so no process serves what the bucket does not hold."""
        path = self.cache.root / sha256
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        try:
            with path.open("rb") as body:
                self._s3.put_object(Bucket=self.where.bucket, Key=self.where.key(sha256),
                                    Body=body, ContentLength=size, ChecksumSHA256=checksum,
                                    ContentType="application/octet-stream")
            stored = self._head(sha256, "confirm the upload of")
        except _s3_errors() as exc:
            self.cache.delete(sha256)
            raise StorageError(explain(exc, self.where, f"upload artifact {sha256}")) from None
        except BaseException:
            self.cache.delete(sha256)
            raise
        if stored != size:
            self.cache.delete(sha256)
            raise StorageError(f"{self.where.url(sha256)} holds {stored} bytes after an upload "
                               f"of {size}: the server lost the write; upload it again")
        self._trim(keep=sha256)

    # -- reading ---------------------------------------------------------------------------
    def _head(self, sha256: str, doing: str) -> int | None:
        """The object's size, or None when there is none."""
        try:
            head = self._s3.head_object(Bucket=self.where.bucket, Key=self.where.key(sha256))
        except _s3_errors() as exc:
            if _missing(exc):
                return None
            raise StorageError(explain(exc, self.where, f"{doing} artifact {sha256}")) from None
        return int(head["ContentLength"])

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self._head(sha256, "look up") is not None

    def size(self, sha256: str) -> int:
        size = self._head(check_sha256(sha256), "look up")
        if size is None:
            raise NotFoundError(f"no artifact {sha256}: upload it with POST /api/v1/artifacts")
        return size

    def delete(self, sha256: str) -> None:
        """Remove an artifact (gone already is fine): the caller checked nothing uses it."""
        key = self.where.key(check_sha256(sha256))
        try:
            self._s3.delete_object(Bucket=self.where.bucket, Key=key)
        except _s3_errors() as exc:
            raise StorageError(explain(exc, self.where, f"delete artifact {sha256}")) from None
        self.cache.delete(sha256)

    def path(self, sha256: str) -> Path:
        """A local, verified copy of an artifact in the bucket; NotFoundError when the bucket
        has none (a copy cached earlier does not count: another replica may have deleted
        it), StorageError when its bytes do not match its name."""
        size = self.size(sha256)
        cached = self.cache.root / sha256
        if cached.is_file() and cached.stat().st_size == size:
            os.utime(cached)  # recently used: the last to be trimmed
            return cached
        self._download(sha256)
        return cached

    def open(self, sha256: str) -> BinaryIO:
        return self.path(sha256).open("rb")

    def read_range(self, sha256: str, start: int, end: int) -> bytes:
        return read_file_range(self.path(sha256), start, end)

    def _download(self, sha256: str) -> None:
        writer = self.cache.begin(MAX_OBJECT_BYTES)
        digest = hashlib.sha256()
        try:
            body = self._s3.get_object(Bucket=self.where.bucket,
                                       Key=self.where.key(sha256))["Body"]
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
        except _s3_errors() as exc:
            writer.abort()
            if _missing(exc):
                raise NotFoundError(f"no artifact {sha256}: upload it with POST "
                                    "/api/v1/artifacts") from None
            raise StorageError(explain(exc, self.where, f"download artifact {sha256}")) from None
        except BaseException:
            writer.abort()
            raise
        if digest.hexdigest() != sha256:
            writer.abort()
            line = (f"{self.where.url(sha256)} is corrupt: its bytes hash to "
                    f"{digest.hexdigest()}, refused; upload the file again "
                    "(POST /api/v1/artifacts) or restore the object from a backup")
            log.error(line)
            raise StorageError(line)
        writer.commit(sha256)
        self._trim(keep=sha256)

    def _trim(self, keep: str) -> None:
        """Delete the least recently used cached copies beyond the cache's size."""
        files = []
        for entry in os.scandir(self.cache.root):
            if is_sha256(entry.name) and entry.name != keep:
                stat = entry.stat()
                files.append((stat.st_mtime, stat.st_size, entry.name))
        total = sum(size for _, size, _ in files)
        keep_path = self.cache.root / keep
        total += keep_path.stat().st_size if keep_path.exists() else 0
        for _, size, name in sorted(files):
            if total <= self._cache_max:
                break
            (self.cache.root / name).unlink(missing_ok=True)
            total -= size
