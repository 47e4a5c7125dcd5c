"""``parkwatch releases``: signed releases of model versions."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Signed releases of model versions.')


@app.command("create")
@fails_cleanly
def release_create(
    model: str,
    version: str | None = typer.Option(None, help="Default: latest."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sign a release of a model version."""
    from .client import client_from, print_json

    with client_from(config) as api:
        release = api.post("/api/v1/releases", {"model_name": model, "version": version})
    if as_json:
        print_json(release)
    else:
        typer.echo(
            f"release {release['release_id']} ({model} v{release['model_version']}, "
            f"key {release['key_id']})"
        )


@app.command("list")
@fails_cleanly
def release_list(
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Releases, newest first."""
    from .client import show_page

    columns = ["release_id", "model_name", "model_version", "key_id", "created_at"]
    show_page(config, "/api/v1/releases", columns, "releases", as_json, limit=limit, offset=offset)


@app.command("show")
@fails_cleanly
def release_show(release_id: str, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One release."""
    from .client import show_record

    show_record(config, f"/api/v1/releases/{release_id}", release_id, as_json)
