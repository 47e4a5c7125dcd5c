"""``parkwatch models``: browse the model registry."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Browse the model registry.')


@app.command("list")
@fails_cleanly
def models_list(
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Registered models."""
    from .client import show_page

    columns = ["name", "latest_version", "version_count", "created_at"]
    show_page(config, "/api/v1/models", columns, "models", as_json, limit=limit, offset=offset)


@app.command("versions")
@fails_cleanly
def models_versions(
    name: str,
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Versions of one model, newest first."""
    from .client import show_page

    path = f"/api/v1/models/{name}/versions"
    columns = ["version", "aliases", "created_at", "primary_sha256", "metrics"]
    show_page(config, path, columns, f"{name} versions", as_json, limit=limit, offset=offset)
