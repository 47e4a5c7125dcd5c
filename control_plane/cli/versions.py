"""``parkwatch versions``: search, show and delete model versions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Search, show and delete model versions.')
VERSION_COLUMNS = ["model_name", "version", "aliases", "created_at", "metrics", "primary_sha256"]


def _aware(value: datetime | None) -> str | None:
    from datetime import UTC

    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@app.command("list")
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


@app.command("show")
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


@app.command("compare")
@fails_cleanly
def versions_compare(
    model: str,
    a: str = typer.Argument(..., help="Version number or alias, e.g. champion."),
    b: str = typer.Argument(..., help="Version number or alias."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Two versions side by side: every metric, the difference B - A, and the release
    gate's verdict on each."""
    from rich.console import Console
    from rich.table import Table

    from .client import client_from, print_json

    with client_from(config) as api:
        cmp = api.get(f"/api/v1/models/{model}/compare", a=a, b=b)
    if as_json:
        print_json(cmp)
        return
    va, vb = cmp["a"], cmp["b"]
    table = Table(title=f"{model}: v{va['version']} ({a}) against v{vb['version']} ({b})")
    for column in ("", f"v{va['version']}", f"v{vb['version']}", "B - A"):
        table.add_column(column, no_wrap=column == "")

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.4g}"

    for row in cmp["metrics"]:
        delta = row["delta"]
        table.add_row(row["metric"], num(row["a"]), num(row["b"]),
                      "-" if delta is None else f"{delta:+.4g}")
    for field in ("dataset_version", "created_at", "created_by", "gate"):
        table.add_row(field, str(va[field]), str(vb[field]), "")
    Console().print(table)


@app.command("delete")
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
