"""``parkwatch db``: the control plane's database (local: acts on the store directly)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    ConfigOpt,
    fails_cleanly,
    server_settings,
)

app = typer.Typer(no_args_is_help=True, help="The control plane's database.")


@app.command("upgrade")
@fails_cleanly
def db_upgrade(config: Path | None = ConfigOpt) -> None:
    """Create or migrate the schema to the latest revision."""
    from ..store.db import upgrade

    settings = server_settings(config)
    upgrade(settings.resolved_database_url)
    typer.echo("database is up to date")
