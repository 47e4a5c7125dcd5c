"""The artifact store the settings name: the folder, or a bucket checked at once (so a
wrong endpoint, bucket or key stops ``serve`` and ``worker`` with one line, not the first
upload)."""

from __future__ import annotations

from typing import Any

from ..config import ControlPlaneSettings
from ..errors import ConfigError
from .artifacts import ArtifactStore, LocalContentStore

S3_CONNECT_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 60.0


def open_artifact_store(settings: ControlPlaneSettings) -> ArtifactStore:
    if settings.artifact_store == "folder":
        return LocalContentStore(settings.resolved_artifact_dir)
    from .s3_artifacts import MAX_OBJECT_BYTES, S3ArtifactStore, S3Location

    if settings.max_artifact_bytes > MAX_OBJECT_BYTES:
        raise ConfigError(
            f"max_artifact_bytes ({settings.max_artifact_bytes}) is over what one S3 PUT "
            f"takes ({MAX_OBJECT_BYTES}): lower max_artifact_bytes")
    assert settings.s3_bucket is not None  # the settings' validator requires it for s3
    where = S3Location(settings.s3_bucket, settings.s3_prefix,
                       settings.s3_endpoint_url or "AWS S3")
    store = S3ArtifactStore(s3_client(settings), where,
                            settings.resolved_s3_cache_dir(settings.data_dir),
                            settings.s3_cache_max_bytes)
    store.check()
    return store


def s3_client(settings: ControlPlaneSettings) -> Any:
    """A boto3 S3 client from the settings (boto3's default credentials where unset)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise ConfigError("artifact_store = s3 needs boto3: pip install 'parkwatch[s3]'"
                          ) from None
    secret = settings.s3_secret_access_key
    config = Config(
        connect_timeout=S3_CONNECT_TIMEOUT_S, read_timeout=S3_READ_TIMEOUT_S,
        # standard mode backs off exponentially, with jitter, on 503 / SlowDown (with or
        # without Retry-After) and on connection errors, at most s3_max_attempts tries
        retries={"total_max_attempts": settings.s3_max_attempts, "mode": "standard"},
        # a server of one's own is addressed by path: its host name has no bucket DNS
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret is not None else None,
        config=config,
    )
