"""``parkwatch telemetry``: telemetry windows received from devices."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Telemetry received from devices.')


@app.command("list")
@fails_cleanly
def telemetry_list(
    device: str | None = typer.Option(None, help="Only this device."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Telemetry windows, newest first."""
    from .client import show_page

    columns = ["device_id", "seq", "window_start", "window_end", "release_id", "received_at"]
    show_page(
        config,
        "/api/v1/telemetry",
        columns,
        "telemetry",
        as_json,
        device=device,
        limit=limit,
        offset=offset,
    )
