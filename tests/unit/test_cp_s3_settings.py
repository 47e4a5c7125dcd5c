"""The S3 artifact store's settings and its one-line explanations of S3 failures (built
from botocore's own exception classes, as boto3 raises them)."""

from __future__ import annotations

import pytest

pytest.importorskip("botocore", reason="boto3 is not installed (pip install -e '.[s3]')")

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from control_plane.config import ControlPlaneSettings
from control_plane.errors import ConfigError
from control_plane.store.s3_artifacts import S3Location, explain

WHERE = S3Location("pw-models", "artifacts/", "http://minio:9000")


def _client_error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "HeadBucket")


def test_folder_is_the_default_and_needs_no_s3_key() -> None:
    settings = ControlPlaneSettings()
    assert settings.artifact_store == "folder" and settings.s3_bucket is None


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ({"artifact_store": "s3"}, "needs s3_bucket (PARKWATCH_S3_BUCKET)"),
        ({"s3_bucket": "Models_1"}, "is not a bucket name"),
        ({"s3_endpoint_url": "minio:9000"}, "is not an http:// or https:// URL"),
        ({"s3_prefix": "/abs"}, "no leading '/'"),
        ({"s3_access_key_id": "AKIA"}, "go together: set both"),
    ],
)
def test_bad_s3_settings_are_one_line(keys: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        ControlPlaneSettings.load(**keys)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_prefix_is_a_folder_and_the_secret_stays_hidden() -> None:
    settings = ControlPlaneSettings.load(s3_prefix="fleet-a", s3_access_key_id="AKIA",
                                         s3_secret_access_key="very-secret")
    assert settings.s3_prefix == "fleet-a/"
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings)


@pytest.mark.parametrize(
    ("exc", "doing", "says"),
    [
        (EndpointConnectionError(endpoint_url="http://minio:9000/pw-models"), "open the bucket",
         "cannot reach the S3 endpoint http://minio:9000 to open the bucket"),
        (NoCredentialsError(), "open the bucket", "no S3 credentials"),
        (_client_error("404"), "open the bucket", "bucket pw-models does not exist"),
        (_client_error("NoSuchBucket"), "upload artifact x", "bucket pw-models does not exist"),
        (_client_error("403"), "open the bucket", "refused the credentials"),
        (_client_error("SignatureDoesNotMatch"), "list the artifacts", "refused the credentials"),
        (_client_error("SlowDown", "Reduce your request rate"), "upload artifact x",
         "is overloaded (SlowDown) and refused to upload artifact x 1 time(s)"),
        (_client_error("InternalError", "We encountered an internal error"), "upload artifact x",
         "answered InternalError (We encountered an internal error) to upload artifact x"),
    ],
)
def test_s3_failures_name_the_fix(exc: Exception, doing: str, says: str) -> None:
    line = explain(exc, WHERE, doing)
    assert says in line and "\n" not in line, line
