"""``parkwatch aliases``: aliases such as champion and challenger."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly, renamed

app = typer.Typer(no_args_is_help=True, help='Aliases (champion, challenger, ...).')


@app.command("set")
@fails_cleanly
def aliases_set(
    model: str,
    alias: str,
    version: str,
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Point ALIAS at VERSION (creates or moves it; audited)."""
    from .client import client_from, print_json

    with client_from(config) as api:
        row = api.put(f"/api/v1/models/{model}/aliases/{alias}", {"version": version})
    if as_json:
        print_json(row)
    else:
        typer.echo(f"{model}@{alias} -> version {row['version']}")


@app.command("remove", hidden=True, deprecated=renamed("aliases delete"))
@app.command("delete")
@fails_cleanly
def aliases_remove(model: str, alias: str, config: Path | None = ConfigOpt) -> None:
    """Remove an alias (audited)."""
    from .client import client_from

    with client_from(config) as api:
        api.delete(f"/api/v1/models/{model}/aliases/{alias}")
    typer.echo(f"removed {model}@{alias}")


@app.command("list")
@fails_cleanly
def aliases_list(
    model: str,
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """A model's aliases and the versions they name."""
    from .client import show_page

    path = f"/api/v1/models/{model}/aliases"
    columns = ["alias", "version", "updated_by", "updated_at"]
    show_page(config, path, columns, f"{model} aliases", as_json, limit=limit, offset=offset)
