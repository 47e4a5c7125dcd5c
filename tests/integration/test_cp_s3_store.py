"""The artifact store on a real S3-compatible server (SeaweedFS, started here on loopback):
two control-plane replicas that share one bucket and no folder, an agent that installs
through the replica that did not take the upload, a corrupted object refused, a release
refused while its artifact is not stored, and `parkwatch serve` meeting a wrong endpoint,
bucket or key with one line that names the fix."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from control_plane.api import create_app
from control_plane.config import ControlPlaneSettings, DriftSettings
from control_plane.errors import StorageError
from control_plane.store.artifacts import ArtifactStore
from control_plane.store.keys import Keyring
from control_plane.store.open_artifacts import open_artifact_store
from control_plane.testing import registration
from edge_agent.releases import DownloadError, ReleaseStore
from protocols import load_public_key
from tests.conftest import REPO_ROOT, free_port, serving
from tests.s3_kit import (
    ACCESS_KEY,
    READER_KEY,
    READER_SECRET,
    SECRET_KEY,
    S3Server,
    s3_server_or_skip,
    throttling_proxy,
)

pytestmark = pytest.mark.timeout(240)
API = "/api/v1"
BLOB = os.urandom(3 * 1024 * 1024 + 17)  # several of the store's 1 MiB chunks


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = s3_server_or_skip(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


def s3_settings(s3: S3Server, bucket: str, **extra: object) -> dict[str, object]:
    return {"artifact_store": "s3", "s3_bucket": bucket, "s3_endpoint_url": s3.endpoint,
            "s3_region": "us-east-1", "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY, **extra}


@dataclass
class Replica:
    settings: ControlPlaneSettings
    api: httpx.Client
    url: str


def start_replica(stack: ExitStack, tmp: Path, name: str, bucket: str, s3: S3Server,
                  **keys: object) -> Replica:
    """An API process's worth of app on ``tmp``'s SQLite store and ``bucket``, with a data
    folder of its own (no artifact can pass through a shared folder) and the keys and
    admin token of replica "a" (replicas share the signing keys: docs/operations.md)."""
    data, first = tmp / name, tmp / "a"
    if name != "a":
        shutil.copytree(first / "keys", data / "keys")
    settings = ControlPlaneSettings(
        data_dir=data, database_url=f"sqlite:///{tmp / 'cp.db'}", rollout_tick_seconds=0,
        drift=DriftSettings(analysis_interval_s=0),
        **s3_settings(s3, bucket, **keys))  # type: ignore[arg-type]
    url = stack.enter_context(serving(create_app(settings, enable_mqtt=False), free_port()))
    token = (first / "admin.token").read_text().strip()
    api = stack.enter_context(httpx.Client(
        base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}))
    return Replica(settings, api, url)


@pytest.fixture
def replicas(s3: S3Server, tmp_path: Path) -> Iterator[tuple[Replica, Replica, str]]:
    """Two replicas on one SQLite store and one bucket."""
    bucket = s3.new_bucket()
    with ExitStack() as stack:
        yield (start_replica(stack, tmp_path, "a", bucket, s3),
               start_replica(stack, tmp_path, "b", bucket, s3), bucket)


def upload(replica: Replica, data: bytes) -> str:
    r = replica.api.post(f"{API}/artifacts", content=data)
    assert r.status_code == 201, r.text
    sha: str = r.json()["sha256"]
    assert sha == hashlib.sha256(data).hexdigest()
    return sha


def register(replica: Replica, sha: str, size: int) -> None:
    spec = registration("petnet", [(sha, size, "int8")])
    r = replica.api.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"))
    assert r.status_code == 201, r.text


def agent(replica: Replica, tmp: Path) -> ReleaseStore:
    pems = Keyring(replica.settings.keys_dir).public_pems()
    token = replica.api.headers["Authorization"].removeprefix("Bearer ")
    return ReleaseStore(tmp, replica.url, token,
                        {kid: load_public_key(pem) for kid, pem in pems.items()})


def test_an_artifact_uploaded_to_one_replica_installs_through_the_other(
    replicas: tuple[Replica, Replica, str], s3: S3Server, tmp_path: Path
) -> None:
    a, b, bucket = replicas
    sha = upload(a, BLOB)
    stored = s3.client().get_object(Bucket=bucket, Key=f"artifacts/{sha}")["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == sha  # in the bucket, under its hash
    register(a, sha, len(BLOB))
    release = b.api.post(f"{API}/releases", json={"model_name": "petnet"})
    assert release.status_code == 201, release.text
    installed = agent(b, tmp_path / "agent").install(release.json()["release_id"])
    assert installed.model_path.read_bytes() == BLOB
    ranged = b.api.get(f"{API}/artifacts/{sha}", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == BLOB[10:20]
    for replica in (a, b):  # nothing went through a folder
        assert not list((replica.settings.data_dir / "artifacts").glob("*"))
    print(f"uploaded {len(BLOB)} bytes to replica a, installed by an agent through replica b "
          f"from s3://{bucket}/artifacts/{sha[:12]}...")


def test_a_corrupted_object_is_refused_and_a_new_upload_mends_it(
    replicas: tuple[Replica, Replica, str], s3: S3Server, tmp_path: Path
) -> None:
    a, b, bucket = replicas
    sha = upload(a, BLOB)
    register(a, sha, len(BLOB))
    release_id = a.api.post(f"{API}/releases", json={"model_name": "petnet"}).json()["release_id"]
    damaged = bytearray(BLOB)
    damaged[len(BLOB) // 2] ^= 0xFF  # one flipped bit's worth of rot, same size
    s3.client().put_object(Bucket=bucket, Key=f"artifacts/{sha}", Body=bytes(damaged))
    r = b.api.get(f"{API}/artifacts/{sha}")
    assert r.status_code == 503, r.status_code
    detail = r.json()["detail"]
    assert f"s3://{bucket}/artifacts/{sha} is corrupt" in detail and "upload" in detail, detail
    with pytest.raises(DownloadError, match="503"):
        agent(b, tmp_path / "agent").install(release_id)
    assert not (b.settings.data_dir / "artifact-cache" / sha).exists()
    print(f"injected: a flipped byte in the object -> replica b answered 503: {detail}")
    assert upload(b, BLOB) == sha  # the same bytes again replace the damaged object
    assert agent(b, tmp_path / "agent").install(release_id).model_path.read_bytes() == BLOB


def test_a_release_waits_for_its_artifact_to_be_stored(
    replicas: tuple[Replica, Replica, str], s3: S3Server
) -> None:
    a, b, bucket = replicas
    sha = upload(a, BLOB)
    register(a, sha, len(BLOB))
    s3.client().delete_object(Bucket=bucket, Key=f"artifacts/{sha}")  # lost since
    r = b.api.post(f"{API}/releases", json={"model_name": "petnet"})
    assert r.status_code == 422, r.text
    assert f"artifact {sha} of petnet version 1 is not in" in r.json()["detail"]
    assert b.api.get(f"{API}/releases").json()["total"] == 0
    assert a.api.get(f"{API}/artifacts/{sha}").status_code == 404  # a's cached copy unused
    upload(b, BLOB)
    assert b.api.post(f"{API}/releases", json={"model_name": "petnet"}).status_code == 201


def test_an_upload_the_bucket_refuses_is_503_and_not_recorded(
    replicas: tuple[Replica, Replica, str], s3: S3Server, tmp_path: Path
) -> None:
    _a, _b, bucket = replicas
    with ExitStack() as stack:  # a replica whose key may read the bucket, not write it
        c = start_replica(stack, tmp_path, "c", bucket, s3, s3_access_key_id=READER_KEY,
                          s3_secret_access_key=READER_SECRET)
        r = c.api.post(f"{API}/artifacts", content=BLOB)
        assert r.status_code == 503, r.text
        detail = r.json()["detail"]
        assert "refused the credentials" in detail and "upload artifact" in detail, detail
        sha = hashlib.sha256(BLOB).hexdigest()
        assert c.api.get(f"{API}/artifacts/{sha}").status_code == 404
        assert not (c.settings.data_dir / "artifact-cache" / sha).exists()
        spec = registration("petnet", [(sha, len(BLOB), "int8")])
        r = c.api.post(f"{API}/models/petnet/versions", json=spec.model_dump(mode="json"))
        assert r.status_code == 422 and "upload it first" in r.text, r.text
        print(f"injected: a read-only key -> upload answered 503: {detail}")


def test_two_stores_share_a_bucket_and_keep_their_caches_small(
    s3: S3Server, tmp_path: Path
) -> None:
    bucket = s3.new_bucket()
    blobs = [os.urandom(300_000 + i) for i in range(3)]

    def store(name: str) -> ArtifactStore:
        return open_artifact_store(ControlPlaneSettings(
            data_dir=tmp_path / name, s3_cache_max_bytes=700_000,
            **s3_settings(s3, bucket, s3_prefix="models")))  # type: ignore[arg-type]

    writer, reader = store("w"), store("r")
    shas = [writer.put([b[:1000], b[1000:]])[0] for b in blobs]
    keys = sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(f"models/{sha}" for sha in shas)
    for sha, blob in [*zip(shas, blobs, strict=True), (shas[0], blobs[0])]:
        assert reader.read_range(sha, 5, 105) == blob[5:105]
        assert reader.size(sha) == len(blob)
    cached = sorted(p.name for p in (tmp_path / "r" / "artifact-cache").iterdir())
    assert cached == sorted([shas[0], shas[2]])  # the least recently used one went
    writer.delete(shas[1])
    assert not reader.exists(shas[1]) and reader.exists(shas[0])


def test_head_of_an_artifact_reads_its_size_not_its_bytes(
    replicas: tuple[Replica, Replica, str],
) -> None:
    a, b, _bucket = replicas
    sha = upload(a, BLOB)
    cache = b.settings.data_dir / "artifact-cache"
    head = b.api.head(f"{API}/artifacts/{sha}")
    assert head.status_code == 200, head.text
    assert int(head.headers["content-length"]) == len(BLOB)
    assert head.headers["etag"] == f'"{sha}"' and head.headers["repr-digest"]
    assert not (cache / sha).exists()  # answered from the bucket's HEAD, nothing downloaded
    assert b.api.head(f"{API}/artifacts/{sha}",
                      headers={"If-None-Match": f'"{sha}"'}).status_code == 304
    assert b.api.head(f"{API}/artifacts/{'0' * 64}").status_code == 404
    assert b.api.get(f"{API}/artifacts/{sha}").content == BLOB
    assert (cache / sha).exists()


def test_a_throttling_server_is_tried_again_then_named_in_one_line(
    s3: S3Server, tmp_path: Path
) -> None:
    """503 SlowDown without Retry-After: backed off and tried again up to s3_max_attempts,
    then one line naming the setting."""
    bucket, blob = s3.new_bucket(), os.urandom(100_000)
    with throttling_proxy(s3.endpoint) as throttle:
        store = open_artifact_store(ControlPlaneSettings(
            data_dir=tmp_path / "d", s3_max_attempts=3,
            **s3_settings(s3, bucket, s3_endpoint_url=throttle.endpoint)))  # type: ignore[arg-type]
        throttle.refuse = 2
        sha, _size = store.put([blob])
        assert [r.split()[0] for r in throttle.refused] == ["PUT", "PUT"]
        assert s3.client().get_object(Bucket=bucket, Key=f"artifacts/{sha}")["Body"].read() == blob

        throttle.refuse, throttle.refused = 10, []
        with pytest.raises(StorageError) as put_err:
            store.put([blob[:-1]])
        assert len(throttle.refused) == 3  # bounded: s3_max_attempts tries, no more
        throttle.refuse, throttle.refused = 10, []
        with pytest.raises(StorageError) as head_err:
            store.size(sha)  # a HEAD's 503 has no body, so no SlowDown code
        assert [r.split()[0] for r in throttle.refused] == ["HEAD"] * 3
    for err, code in ((put_err, "SlowDown"), (head_err, "503")):
        line = str(err.value)
        print(line)
        assert "\n" not in line and f"is overloaded ({code})" in line and "3 time(s)" in line
        assert "PARKWATCH_S3_MAX_ATTEMPTS" in line and SECRET_KEY not in line


def _serve_fails_in_one_line(tmp_path: Path, settings: dict[str, object]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKWATCH_")}
    env.update({f"PARKWATCH_{k.upper()}": str(v) for k, v in settings.items()})
    env.update(PARKWATCH_DATA_DIR=str(tmp_path / "data"), PARKWATCH_PORT=str(free_port()),
               PARKWATCH_EMBEDDED_BROKER_PORT=str(free_port()))
    proc = subprocess.run([sys.executable, "-m", "parkwatch_cli", "serve"], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert SECRET_KEY not in proc.stderr + proc.stdout
    print(errors[0])
    return errors[0]


def test_serve_with_an_unreachable_endpoint(tmp_path: Path, s3: S3Server) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    line = _serve_fails_in_one_line(
        tmp_path, s3_settings(s3, "pw-any", s3_endpoint_url=dead))
    assert f"cannot reach the S3 endpoint {dead}" in line
    assert "PARKWATCH_S3_ENDPOINT_URL" in line


def test_serve_with_a_missing_bucket(tmp_path: Path, s3: S3Server) -> None:
    line = _serve_fails_in_one_line(tmp_path, s3_settings(s3, "pw-no-such-bucket"))
    assert "bucket pw-no-such-bucket does not exist" in line and "PARKWATCH_S3_BUCKET" in line


def test_serve_with_a_wrong_secret(tmp_path: Path, s3: S3Server) -> None:
    settings = s3_settings(s3, s3.new_bucket(), s3_secret_access_key="not-the-secret")
    line = _serve_fails_in_one_line(tmp_path, settings)
    assert "refused the credentials" in line and "PARKWATCH_S3_SECRET_ACCESS_KEY" in line
    assert "not-the-secret" not in line
