#!/usr/bin/env python3
"""What the S3 artifact store costs beside the folder store, side by side in one run.

    python bench/artifact_store.py                  # 1 MiB and 16 MiB, 3 rounds
    python bench/artifact_store.py --sizes 64 --rounds 5

A real SeaweedFS (``scripts/seaweedfs.py``) on loopback, one bucket written once before
the rounds (its first write allocates its volumes); per size and round: an upload
(``put``: spooled, hashed, then a PUT with its checksum and a HEAD for the bucket; a
temp file, fsync and rename for the folder), the first read by another store instance
(another replica: a GET, hashed, into its cache; the folder: the file is there) and a
cached read (a HEAD, then the cached file). Medians; the bucket's figures also as a
ratio of the folder's upload. CPU is this process's (the server's is not in it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _machine import cpu_name  # bench/ is on sys.path: scripts run from it

from control_plane.config import ControlPlaneSettings
from control_plane.store.artifacts import ArtifactStore, LocalContentStore
from control_plane.store.open_artifacts import open_artifact_store
from scripts.seaweedfs import ACCESS_KEY, SECRET_KEY, S3Server, start_s3_server

MIB = 1024 * 1024


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def bucket_store(server: S3Server, bucket: str, data_dir: Path) -> ArtifactStore:
    return open_artifact_store(ControlPlaneSettings(
        data_dir=data_dir, artifact_store="s3", s3_bucket=bucket,
        s3_endpoint_url=server.endpoint, s3_region="us-east-1", s3_access_key_id=ACCESS_KEY,
        s3_secret_access_key=SECRET_KEY))  # type: ignore[arg-type]


def one_round(server: S3Server, bucket: str, tmp: Path, blob: bytes
              ) -> dict[str, tuple[float, float]]:
    """Each step's (wall, CPU) seconds for one artifact ``blob``."""
    folder = LocalContentStore(tmp / "folder")
    writer = bucket_store(server, bucket, tmp / "writer")
    reader = bucket_store(server, bucket, tmp / "reader")
    sha = hashlib.sha256(blob).hexdigest()
    return {
        "folder upload": timed(lambda: folder.put([blob])),
        "folder read": timed(lambda: folder.path(sha).read_bytes()),
        "bucket upload": timed(lambda: writer.put([blob])),
        "bucket first read": timed(lambda: reader.path(sha).read_bytes()),
        "bucket cached read": timed(lambda: reader.path(sha).read_bytes()),
    }


def one_size(server: S3Server, bucket: str, tmp: Path, size: int, rounds: int
             ) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for n in range(rounds):
        blob = os.urandom(size)  # new bytes each round: a new object, nothing cached
        for step, (wall, cpu) in one_round(server, bucket, tmp / f"{size}-{n}", blob).items():
            out.setdefault(step, []).append(wall)
            out.setdefault(f"{step} cpu", []).append(cpu)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 16], help="MiB")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pw-artifact-bench-") as name:
        tmp = Path(name)
        server = start_s3_server(tmp / "seaweedfs")
        try:
            load = os.getloadavg()[0]
            print(f"# Artifact store: folder vs S3 bucket (SeaweedFS on loopback)\n\n"
                  f"{cpu_name()}, {os.cpu_count()} cores; load average {load:.1f} at the "
                  f"start; medians of {args.rounds} rounds.\n")
            print("| size | step | wall ms | MB/s | CPU ms (this process) | x folder upload |")
            print("|---|---|---|---|---|---|")
            bucket = server.new_bucket()
            one_round(server, bucket, tmp / "warm-up", os.urandom(MIB))  # the bucket's
            # first write makes its volumes: not what an upload costs afterwards
            for mib in args.sizes:
                figures = one_size(server, bucket, tmp, mib * MIB, args.rounds)
                base = statistics.median(figures["folder upload"])
                for step in ("folder upload", "folder read", "bucket upload",
                             "bucket first read", "bucket cached read"):
                    wall = statistics.median(figures[step])
                    cpu = statistics.median(figures[f"{step} cpu"])
                    print(f"| {mib} MiB | {step} | {wall * 1000:.1f} | "
                          f"{mib * MIB / wall / 1e6:.0f} | {cpu * 1000:.1f} | "
                          f"{wall / base:.2f} |")
            print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
