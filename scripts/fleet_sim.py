"""Fleet simulator: many lightweight agents on real MQTT connections, no cameras, no models.

Each simulated device is one paho client speaking the real protocol (``protocols``):
``online`` status with an ``offline`` Last Will, a retained reported state, telemetry
windows at QoS 1 drawn from its release's reference profile with configurable drift
(``scripts/fleet_synth.py``), and it acts on desired states like a healthy agent (reports
the release as healthy, or as failed for ``--reject-release``). All clients share one
thread and one selector, so a thousand devices cost a thousand sockets, not threads.

    python scripts/fleet_sim.py --devices 200 --provision --backfill 30 \\
        --drift-fraction 0.25 --drift-magnitude 0.8 --drift-after 15

Devices must exist in the control plane (``--provision`` creates missing ones with an
admin token: labels park, camera, condition=day/night). API URL and token come from
``PARKWATCH_API_URL`` / ``PARKWATCH_API_TOKEN`` or ``<data_dir>/admin.token``, as for the
CLI. Ctrl-C publishes ``offline`` for every device and stops.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control_plane.config import ClientSettings
from protocols.logs import configure_logging
from scripts.fleet_agents import Fleet, FleetStats, ManifestCache
from scripts.fleet_synth import DriftPlan, SimConfig, device_ids, device_labels


def provision(api: httpx.Client, config: SimConfig) -> int:
    """Create the devices the control plane lacks; return how many were created."""
    created = 0
    for index, device_id in enumerate(device_ids(config.prefix, config.devices)):
        if api.get(f"/api/v1/devices/{device_id}").status_code == 200:
            continue
        body = {"device_id": device_id, "labels": device_labels(config, index)}
        resp = api.post("/api/v1/devices", json=body)
        if resp.status_code != 201:
            raise SystemExit(
                f"cannot provision {device_id}: {resp.status_code} {resp.text[:200]}"
                " (provisioning needs an admin token)"
            )
        created += 1
    return created


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883", help="broker the devices use")
    p.add_argument("--devices", type=int, default=10, help="how many simulated devices")
    p.add_argument("--prefix", default="sim", help="device ids are PREFIX-0000, PREFIX-0001, ...")
    p.add_argument("--cameras", type=int, default=1, help="cameras per device")
    p.add_argument(
        "--window-seconds", type=float, default=60.0, help="length of a backfilled window"
    )
    p.add_argument(
        "--interval", type=float, default=60.0, help="seconds between (and length of) live windows"
    )
    p.add_argument("--windows", type=int, default=0, help="windows per device (0: until Ctrl-C)")
    p.add_argument(
        "--backfill", type=int, default=0, help="windows per device dated in the past, sent first"
    )
    p.add_argument("--fps", type=float, default=5.0, help="inferred frames per second per camera")
    p.add_argument("--drift-fraction", type=float, default=0.0, help="share of devices that drift")
    p.add_argument("--drift-magnitude", type=float, default=0.8, help="0 none .. 1 strong (night)")
    p.add_argument("--drift-after", type=int, default=0, help="windows before drift starts")
    p.add_argument("--drift-ramp", type=int, default=5, help="windows over which drift ramps up")
    p.add_argument(
        "--camera-faults",
        type=float,
        default=0.0,
        help="share of devices with a reconnecting camera",
    )
    p.add_argument(
        "--reject-release",
        action="append",
        default=[],
        help="release the devices fail (repeatable)",
    )
    p.add_argument(
        "--shadow-agreement",
        type=float,
        default=0.95,
        help="share of frames a shadowed release agrees with the serving one",
    )
    p.add_argument("--provision", action="store_true", help="create missing devices (admin token)")
    p.add_argument(
        "--offline-api", action="store_true", help="never call the API (default profile)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> SimConfig:
    try:
        drift = DriftPlan(
            fraction=args.drift_fraction,
            magnitude=args.drift_magnitude,
            after_windows=args.drift_after,
            ramp_windows=args.drift_ramp,
        )
    except ValueError as exc:
        raise SystemExit(f"fleet_sim: {exc}") from None
    if args.devices < 1 or args.cameras < 1 or args.interval <= 0 or args.window_seconds <= 0:
        raise SystemExit(
            "fleet_sim: --devices, --cameras, --interval and --window-seconds must be > 0"
        )
    if not 0.0 <= args.shadow_agreement <= 1.0:
        raise SystemExit("fleet_sim: --shadow-agreement must be within [0, 1]")
    return SimConfig(
        devices=args.devices,
        prefix=args.prefix,
        cameras=args.cameras,
        window_seconds=args.window_seconds,
        interval=args.interval,
        windows=args.windows,
        backfill=args.backfill,
        fps=args.fps,
        drift=drift,
        camera_faults=args.camera_faults,
        reject_releases=frozenset(args.reject_release),
        shadow_agreement=args.shadow_agreement,
        seed=args.seed,
    )


def api_client() -> httpx.Client:
    settings = ClientSettings.load(None)
    token = settings.token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=settings.api_url.rstrip("/"), headers=headers, timeout=30)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    args = parse_args(argv)
    configure_logging(args.log_level)
    config = config_from(args)
    console = Console()
    api = None if args.offline_api else api_client()
    try:
        if api is not None and args.provision:
            console.print(f"provisioned {provision(api, config)} new devices")
        fleet = Fleet(config, args.mqtt_url, ManifestCache(api))
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        total = config.devices * config.windows if config.windows else None
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("windows acked", total=total, line="")

            def show(stats: FleetStats) -> None:
                line = (
                    f"{stats.connected}/{config.devices} connected · {stats.windows_sent} sent · "
                    f"{stats.windows_acked} acked · {stats.desired_handled} desired states"
                )
                progress.update(task, completed=stats.windows_acked, line=line)

            try:
                stats = fleet.run(stop, on_tick=show)
            except KeyboardInterrupt:
                fleet.shutdown()
                stats = fleet.stats
        console.print(
            f"done: {stats.windows_acked} windows acked of {stats.windows_sent} sent, "
            f"{stats.desired_handled} desired states applied, {stats.errors} errors"
        )
        return 0
    except httpx.HTTPError as exc:
        console.print(
            f"[red]control plane unreachable: {exc} — start it (`parkwatch serve`) "
            "or set PARKWATCH_API_URL, or pass --offline-api"
        )
        return 1
    finally:
        if api is not None:
            api.close()


if __name__ == "__main__":
    raise SystemExit(main())
