"""Where artifacts live: the keys of ``parkwatch serve`` and ``worker`` that pick a shared
folder (``artifact_store = "folder"``, the default) or an S3-compatible bucket (``"s3"``).

They are top-level keys (``PARKWATCH_S3_BUCKET``, ``PARKWATCH_S3_SECRET_ACCESS_KEY``, ...)
rather than a table, so that each one, the secret above all, can come from its own
environment variable. ``ControlPlaneSettings`` inherits them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

ArtifactStoreKind = Literal["folder", "s3"]
# S3's bucket naming rules (the path-style subset every S3-compatible server accepts).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ArtifactStoreKeys(BaseModel):
    """The artifact store's keys; validated with the rest of the control plane's settings."""

    artifact_store: ArtifactStoreKind = Field(
        "folder",
        description="Where artifacts (models, reports, samples, snapshots) live: folder "
        "(artifact_dir; replicas share it on a shared filesystem) or s3 (an S3-compatible "
        "bucket: s3_bucket, s3_endpoint_url, ...; replicas share the bucket).",
    )
    s3_bucket: str | None = Field(
        None, description="Bucket of artifact_store = s3; it must exist (parkwatch does not "
        "create buckets).",
    )
    s3_prefix: str = Field(
        "artifacts/", description="Key prefix of the artifacts in s3_bucket: each is stored "
        "as <prefix><sha256>.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="URL of an S3-compatible server (e.g. http://minio:9000); unset: "
        "AWS S3 in s3_region.",
    )
    s3_region: str | None = Field(
        None, description="Region of s3_bucket; unset: boto3's default (AWS_REGION, "
        "~/.aws/config), or us-east-1.",
    )
    s3_access_key_id: str | None = Field(
        None, description="Access key id (with s3_secret_access_key); unset: boto3's "
        "default credentials (AWS_ACCESS_KEY_ID, ~/.aws/credentials, an instance role).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret of s3_access_key_id; never logged.",
    )
    s3_cache_dir: Path | None = Field(
        None, description="Local folder of verified copies of the artifacts this process "
        "served or used; unset: <data_dir>/artifact-cache.",
    )
    s3_cache_max_bytes: int = Field(
        10 * 1024**3, gt=0, description="Size s3_cache_dir is trimmed to, least recently "
        "used first, in bytes.",
    )
    s3_max_attempts: int = Field(
        5, ge=1, le=20, description="Tries of one S3 call the server throttles (503 "
        "SlowDown) or fails transiently (5xx, a dropped connection), backing off "
        "exponentially with jitter between them (at most 1+2+4+8 s at 5 tries); then the "
        "call fails with a one-line error.",
    )

    @field_validator("s3_bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET_RE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a bucket name: 3-63 lowercase letters, digits, dots and "
                "hyphens, starting and ending with a letter or digit"
            )
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/") or "//" in value:
            raise ValueError(f"{value!r}: a key prefix has no leading '/' and no '//'")
        return value if value == "" or value.endswith("/") else value + "/"

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"{value!r} is not an http:// or https:// URL (e.g. http://minio:9000)"
                )
        return value

    @model_validator(mode="after")
    def _s3_complete(self) -> Self:
        if self.artifact_store == "s3" and self.s3_bucket is None:
            raise ValueError("artifact_store = s3 needs s3_bucket (PARKWATCH_S3_BUCKET)")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                "s3_access_key_id and s3_secret_access_key go together: set both, or neither "
                "for boto3's default credentials"
            )
        return self

    def resolved_s3_cache_dir(self, data_dir: Path) -> Path:
        return self.s3_cache_dir if self.s3_cache_dir is not None else data_dir / "artifact-cache"
