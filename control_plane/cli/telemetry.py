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
    from urllib.parse import quote

    from .client import client_from, print_json, print_table

    columns = ["device_id", "seq", "window_start", "window_end", "release_id", "received_at"]
    with client_from(config) as api:
        page = api.get("/api/v1/telemetry", device=device, limit=limit, offset=offset)
        if device is not None and not page["total"]:  # a typo is not "no windows yet"
            api.get(f"/api/v1/devices/{quote(device, safe='')}")
    if as_json:
        print_json(page)
    else:
        print_table(page["items"], columns, title="telemetry", total=page["total"])
