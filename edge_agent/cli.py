"""``parkwatch agent ...``: run the daemon or check its configuration."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from protocols.logs import configure_logging
from protocols.urls import redact_url

from .config import AgentSettings, load_settings
from .errors import AgentError

log = logging.getLogger(__name__)
EXIT_THREAD_DIED = 70  # EX_SOFTWARE: a thread of the agent died (systemd: Restart=always)

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


OfflineOption = typer.Option(
    False, "--offline", help="Validate the file only: do not try the broker, the API or "
    "the cameras.")
TimeoutOption = typer.Option(
    5.0, "--timeout", min=0.1, help="Seconds to wait for the broker and the API.")


@app.command()
def check(config: Path = ConfigOption, offline: bool = OfflineOption,
          timeout: float = TimeoutOption) -> None:
    """Validate the config and the trusted keys; then try the data folder, the broker,
    the API and each camera, and say what each answered (exit 1 when any fails)."""
    settings = _load(config)
    keys = settings.trusted_keys()
    typer.echo(f"device {settings.device_id}: config OK")
    typer.echo(f"  control plane {settings.control_plane_url}, "
               f"broker {redact_url(settings.mqtt_url)}")
    typer.echo(f"  trusted keys: {', '.join(sorted(keys)) or 'NONE (no release can install)'}")
    failed = not keys
    if offline:
        for cam in settings.cameras:
            source = redact_url(cam.source)
            typer.echo(f"  camera {cam.camera_id}: {cam.kind} {source} @ {cam.sample_fps} fps")
    else:
        from .checks import run_checks  # OpenCV and paho load only when asked to probe

        for finding in run_checks(settings, timeout):
            typer.echo(f"  {finding.subject}: {'ok' if finding.ok else 'FAILED'}: "
                       f"{finding.line}")
            failed = failed or not finding.ok
    if failed:
        raise typer.Exit(1)


@app.command()
def run(config: Path = ConfigOption) -> None:
    """Run the agent until SIGTERM/SIGINT; then flush, say offline and exit 0. A thread
    that dies stops the agent the same way, with exit code 70 (systemd restarts it)."""
    settings = _load(config)
    from .checks import data_dir_problem

    # Before anything opens a file there: one line, not the traceback of whichever
    # component happened to write first.
    if (problem := data_dir_problem(settings.data_dir)) is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    configure_logging(settings.log_level)
    from .daemon import Agent

    stop = threading.Event()
    died: list[str] = []

    def _signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def _thread_died(args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "unknown"
        died.append(f"thread {name} died: {args.exc_type.__name__}: {args.exc_value}")
        log.critical(died[-1], exc_info=args.exc_value)
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    # A dead thread would leave a process that looks alive and does nothing (systemd
    # restarts only a process that exits): every thread's uncaught exception ends it.
    threading.excepthook = _thread_died
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
    if died:
        typer.echo(f"error: {died[0]}; exiting so that the service manager restarts the agent",
                   err=True)
        raise typer.Exit(EXIT_THREAD_DIED)
