"""``parkwatch agent ...``: run the daemon or check its configuration."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from protocols.logs import configure_logging
from protocols.urls import redact_url

from .config import AgentSettings, load_settings
from .errors import AgentError

app = typer.Typer(help="The edge agent: classify camera frames, report telemetry.",
                  no_args_is_help=True)

ConfigOption = typer.Option(
    ..., "--config", "-c", envvar="PARKWATCH_AGENT_CONFIG", exists=False, dir_okay=False,
    help="Agent TOML file (docs/contracts.md); environment PARKWATCH_AGENT_* wins over it.",
)


def _load(config: Path) -> AgentSettings:
    try:
        settings = load_settings(config)
        settings.trusted_keys()
    except AgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    return settings


@app.command()
def check(config: Path = ConfigOption) -> None:
    """Validate the config file and the trusted keys, then print a summary."""
    settings = _load(config)
    keys = settings.trusted_keys()
    typer.echo(f"device {settings.device_id}: config OK")
    typer.echo(f"  control plane {settings.control_plane_url}, "
               f"broker {redact_url(settings.mqtt_url)}")
    typer.echo(f"  trusted keys: {', '.join(sorted(keys)) or 'NONE (no release can install)'}")
    for cam in settings.cameras:
        source = redact_url(cam.source)
        typer.echo(f"  camera {cam.camera_id}: {cam.kind} {source} @ {cam.sample_fps} fps")
    if not keys:
        raise typer.Exit(1)


@app.command()
def run(config: Path = ConfigOption) -> None:
    """Run the agent until SIGTERM/SIGINT; then flush, say offline and exit 0."""
    settings = _load(config)
    configure_logging(settings.log_level)
    from .daemon import Agent

    stop = threading.Event()

    def _signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        agent = Agent(settings)
        agent.start()
    except AgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        while not stop.wait(1.0):
            pass
    finally:
        agent.stop()
