"""Registry commands: models, versions (search, show, delete), aliases, datasets.

They talk to the HTTP API like every operator command (``cli_operator``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from .cli_common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

models_app = typer.Typer(no_args_is_help=True, help="Browse the model registry.")
versions_app = typer.Typer(no_args_is_help=True, help="Search, show and delete model versions.")
aliases_app = typer.Typer(no_args_is_help=True, help="Aliases (champion, challenger, ...).")
datasets_app = typer.Typer(no_args_is_help=True, help="Dataset versions used for training.")
VERSION_COLUMNS = ["model_name", "version", "aliases", "created_at", "metrics", "primary_sha256"]


@models_app.command("list")
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


@models_app.command("versions")
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


@versions_app.command("list")
@fails_cleanly
def versions_list(
    model: str | None = typer.Option(None, help="Only this model."),
    alias: str | None = typer.Option(None, help="Only versions carrying this alias."),
    min_accuracy: float | None = typer.Option(None, help="accuracy >= this."),
    min_metric: list[str] = typer.Option([], help="name:number, e.g. macro_f1:0.8; repeatable."),
    created_after: datetime | None = typer.Option(None, help="ISO date/time (UTC if no zone)."),
    created_before: datetime | None = typer.Option(None, help="ISO date/time (UTC if no zone)."),
    dataset: str | None = typer.Option(None, help="Only versions trained on this dataset."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Search versions across models, newest first."""
    from .client import show_page

    params = {
        "model": model,
        "alias": alias,
        "min_accuracy": min_accuracy,
        "min_metric": min_metric,
        "created_after": _aware(created_after),
        "created_before": _aware(created_before),
        "dataset_version": dataset,
    }
    show_page(
        config,
        "/api/v1/versions",
        VERSION_COLUMNS,
        "versions",
        as_json,
        limit=limit,
        offset=offset,
        **params,
    )


def _aware(value: datetime | None) -> str | None:
    from datetime import UTC

    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@versions_app.command("show")
@fails_cleanly
def versions_show(
    model: str,
    version: str = typer.Argument(..., help="Version number or alias."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One version with metrics, lineage, artifacts and aliases."""
    from .client import show_record

    show_record(
        config,
        f"/api/v1/models/{model}/versions/{version}",
        lambda row: f"{model} v{row['version']}",  # VERSION may be an alias: title the number
        as_json,
    )


@versions_app.command("delete")
@fails_cleanly
def versions_delete(
    model: str,
    version: str,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    config: Path | None = ConfigOpt,
) -> None:
    """Delete a version no release, device or alias uses (its artifacts stay stored)."""
    from .client import client_from

    if not yes:
        typer.confirm(f"delete {model} version {version}?", abort=True)
    with client_from(config) as api:
        api.delete(f"/api/v1/models/{model}/versions/{version}")
    typer.echo(f"deleted {model} version {version}")


@aliases_app.command("set")
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


@aliases_app.command("remove")
@fails_cleanly
def aliases_remove(model: str, alias: str, config: Path | None = ConfigOpt) -> None:
    """Remove an alias (audited)."""
    from .client import client_from

    with client_from(config) as api:
        api.delete(f"/api/v1/models/{model}/aliases/{alias}")
    typer.echo(f"removed {model}@{alias}")


@aliases_app.command("list")
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


@datasets_app.command("list")
@fails_cleanly
def datasets_list(
    name: str | None = typer.Option(None, help="Only this dataset."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Registered dataset versions, newest first."""
    from .client import show_page

    columns = ["name", "version", "sample_count", "source", "created_by", "created_at"]
    show_page(
        config,
        "/api/v1/datasets",
        columns,
        "datasets",
        as_json,
        name=name,
        limit=limit,
        offset=offset,
    )
