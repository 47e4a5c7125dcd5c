"""`parkwatch demo`: the whole loop on embedded defaults, on one machine.

Makes synthetic data and camera videos, starts the control plane (SQLite,
local artifacts, in-process MQTT broker), trains and registers a model, signs
a release, provisions three agents, rolls the release out and shows the
telemetry that comes back. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.loop import Loop, class_counts
from scripts.make_video import make_video
from scripts.synth_images import generate_dataset

CAMERAS = {
    "park1-gate": ["cat", "dog", "cat", "cat", "dog", "cat"],
    "park1-lawn": ["dog", "dog", "cat", "dog", "dog", "cat"],
    "park2-pond": ["cat", "dog", "dog", "cat", "dog", "cat"],
}
console = Console()


def step(text: str) -> None:
    console.rule(f"[bold cyan]{text}")


def fleet_table(loop: Loop, release_id: str) -> Table:
    table = Table(title=f"fleet telemetry for release {release_id}")
    for col in ("device", "online", "release", "stage", "windows", "cat", "dog", "p95 ms"):
        table.add_column(col)
    for device_id in CAMERAS:
        device = loop.api(f"/devices/{device_id}")
        active = (device.get("reported") or {}).get("active") or {}
        windows = loop.windows(device_id, release_id)
        counts = class_counts(windows)
        p95 = "-"
        if windows and windows[0]["window"]["cameras"]:
            lat = windows[0]["window"]["cameras"][0].get("inference_ms")
            p95 = f"{lat['p95']:.1f}" if lat else "-"
        table.add_row(
            device_id, "yes" if device.get("online") else "no", active.get("release_id", "-"),
            active.get("stage", "-"), str(len(windows)), str(counts.get("cat", 0)),
            str(counts.get("dog", 0)), p95,
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("demo-data"))
    parser.add_argument(
        "--duration", type=float, default=0, help="seconds to watch; 0 = until Ctrl-C"
    )
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    workdir: Path = args.workdir.resolve()
    loop = Loop(workdir / "run", mqtt_url=None, window_seconds=5.0)
    try:
        step("1/6 synthetic data and camera videos")
        data = workdir / "dataset"
        if not data.exists():
            generate_dataset(data, n_per_class=600, seed=0, size=128)
        for i, (device_id, labels) in enumerate(CAMERAS.items()):
            video = workdir / "videos" / f"{device_id}.avi"
            if not video.exists():
                video.parent.mkdir(parents=True, exist_ok=True)
                make_video(video, labels=labels, n_segments=len(labels), seed=10 + i)
        console.print(f"dataset in {data}, videos in {workdir / 'videos'}")

        step("2/6 control plane (SQLite, local artifacts, embedded MQTT broker)")
        loop.start_control_plane()
        console.print(f"API {loop.api_url}  broker {loop.broker_url}  data {loop.cp_dir}")

        step("3/6 train, export to ONNX, register")
        loop.train(data, workdir / "model", "--epochs", str(args.epochs))
        version = loop.api("/models/petnet/versions")["items"][-1]
        console.print(f"registered petnet version {version['version']}: {version.get('metrics')}")

        step("4/6 provision and start three edge agents")
        for device_id in CAMERAS:
            loop.add_agent(device_id, workdir / "videos" / f"{device_id}.avi")
            loop.start_agent(device_id)
            console.print(f"agent {device_id}: config {loop.workdir / 'agents' / device_id}.toml")

        step("5/6 sign a release and roll it out over MQTT")
        release_id = loop.release_and_roll_out("petnet", *CAMERAS)
        for device_id in CAMERAS:
            loop.wait_for_release(device_id, release_id, timeout=180)
            console.print(f"{device_id}: {release_id} verified, smoke-tested, healthy")

        step("6/6 telemetry flowing back (Ctrl-C to stop)")
        console.print(f"look: {loop.api_url}/api/v1/devices  ·  {loop.api_url}/docs  ·  "
                      f"token in {loop.cp_dir / 'admin.token'}  ·  logs in {loop.workdir / 'logs'}")
        end = time.monotonic() + args.duration if args.duration else float("inf")
        with Live(fleet_table(loop, release_id), console=console, refresh_per_second=1) as live:
            while time.monotonic() < end:
                time.sleep(2)
                live.update(fleet_table(loop, release_id))
        return 0
    except KeyboardInterrupt:
        console.print("stopping ...")
        return 0
    except Exception as exc:
        console.print(f"[red]demo failed: {exc}")
        for proc in loop.procs.values():
            console.print(f"--- {proc.name} log tail ({proc.log})\n{proc.tail(10)}")
        return 1
    finally:
        loop.stop_all()
        console.print("all demo processes stopped")


if __name__ == "__main__":
    raise SystemExit(main())
