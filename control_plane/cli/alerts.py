"""``parkwatch alerts``: list, acknowledge and resolve alerts."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly, renamed

app = typer.Typer(no_args_is_help=True, help='Alerts: list, acknowledge, resolve.')


def _move_alert(alert_id: int, state: str, note: str | None, config: Path | None) -> None:
    from .client import client_from

    with client_from(config) as api:
        row = api.patch(f"/api/v1/alerts/{alert_id}", {"state": state, "note": note})
    typer.echo(f"alert {alert_id} is {row['state']}")


# -- alerts ----------------------------------------------------------------------------------
@app.command("list")
@fails_cleanly
def alerts_list(
    state: str | None = typer.Option(None, help="open, acknowledged or resolved."),
    severity: str | None = typer.Option(None, help="info, warning or critical."),
    device: str | None = typer.Option(None, help="Only this device."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Alerts, newest first."""
    from .client import show_page

    columns = ["id", "state", "severity", "kind", "device_id", "message", "created_at"]
    params = {"state": state, "severity": severity, "device": device}
    show_page(
        config, "/api/v1/alerts", columns, "alerts", as_json, limit=limit, offset=offset, **params
    )


@app.command("ack", hidden=True, deprecated=renamed("alerts acknowledge"))
@app.command("acknowledge")
@fails_cleanly
def alerts_ack(
    alert_id: int, note: str | None = typer.Option(None), config: Path | None = ConfigOpt
) -> None:
    """Acknowledge an alert (audited)."""
    _move_alert(alert_id, "acknowledged", note, config)


@app.command("resolve")
@fails_cleanly
def alerts_resolve(
    alert_id: int, note: str | None = typer.Option(None), config: Path | None = ConfigOpt
) -> None:
    """Resolve an alert (audited)."""
    _move_alert(alert_id, "resolved", note, config)
