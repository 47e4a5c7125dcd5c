"""``parkwatch groups``: device groups (named label selectors)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly, parse_pairs

app = typer.Typer(no_args_is_help=True, help='Device groups (named label selectors).')


# -- groups ----------------------------------------------------------------------------------
@app.command("create")
@fails_cleanly
def groups_create(
    name: str,
    selector: list[str] = typer.Option([], help="key=value a member must carry; repeatable."),
    description: str | None = typer.Option(None, help="What the group is for."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create a group: devices whose labels match every selector item."""
    from .client import client_from, print_json

    body = {"name": name, "selector": parse_pairs(selector, "selector"), "description": description}
    with client_from(config) as api:
        row = api.post("/api/v1/groups", body)
    if as_json:
        print_json(row)
    else:
        typer.echo(f"group {name}: {row['device_count']} device(s) match {row['selector']}")


@app.command("list")
@fails_cleanly
def groups_list(
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Device groups with member counts."""
    from .client import show_page

    columns = ["name", "selector", "device_count", "description", "created_by"]
    show_page(config, "/api/v1/groups", columns, "groups", as_json, limit=limit, offset=offset)


@app.command("show")
@fails_cleanly
def groups_show(name: str, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One group (list its devices with `parkwatch devices list --group NAME`)."""
    from .client import show_record

    show_record(config, f"/api/v1/groups/{name}", name, as_json)


@app.command("delete")
@fails_cleanly
def groups_delete(name: str, config: Path | None = ConfigOpt) -> None:
    """Delete a group; its devices keep their labels."""
    from .client import client_from

    with client_from(config) as api:
        api.delete(f"/api/v1/groups/{name}")
    typer.echo(f"deleted group {name}")
