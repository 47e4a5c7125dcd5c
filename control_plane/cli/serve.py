"""``parkwatch serve`` and ``parkwatch worker``: start a control-plane process
(the processes themselves are in ``processes/``)."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import ControlPlaneError
from .common import (
    ConfigOpt,
    fails_cleanly,
    require_store,
    server_settings,
)

app = typer.Typer()


# -- local admin commands ------------------------------------------------------------------
@app.command("serve")
@fails_cleanly
def serve(
    config: Path | None = ConfigOpt,
    role: str | None = typer.Option(
        None,
        help="all (default: API + ingest + embedded broker if no mqtt_url), api (HTTP only) "
        "or ingest (MQTT ingest only; several share the load via ingest_share_group).",
    ),
    retire: bool = typer.Option(
        False, "--retire",
        help="With --role ingest: end the broker sessions of this host's ingest workers "
        "that are not running (scaled down for good), after storing what was queued for "
        "them; then exit.",
    ),
) -> None:
    """Run the control plane: HTTP API, MQTT ingest, and a broker if none is configured."""
    from ..processes.serve import serve as run

    if role is not None and role not in ("all", "api", "ingest"):
        raise ControlPlaneError(f"--role {role!r}: choose all, api or ingest")
    if retire and role != "ingest":
        raise ControlPlaneError("--retire goes with --role ingest")
    settings = server_settings(config, role=role)
    if retire:
        from protocols.logs import configure_logging

        from ..processes.ingest import retire_idle_sessions

        configure_logging(settings.log_level)
        retired = retire_idle_sessions(settings)
        typer.echo(f"retired {len(retired)} ingest session(s): {', '.join(retired) or 'none'}")
        return
    if settings.role != "ingest":
        typer.echo(f"dashboard: {settings.resolved_public_url}/dashboard/ (sign in with a token: "
                   f"the first admin's is in {settings.admin_token_path})")
    run(settings)


@app.command("worker")
@fails_cleanly
def worker_command(
    config: Path | None = ConfigOpt,
    once: bool = typer.Option(
        False, "--once", help="Check triggers and run at most one queued job, then exit."
    ),
) -> None:
    """Continuous training: turn triggers into jobs, train, compare, start shadow rollouts."""
    from protocols.logs import configure_logging

    from ..processes.serve_record import check_beside_serve
    from ..processes.worker import run_worker

    settings = server_settings(config)  # serve's file and environment, read the same way
    configure_logging(settings.log_level)
    require_store(settings)
    check_beside_serve(settings)
    run_worker(settings, once=once)
