"""``parkwatch datasets``: dataset versions used for training."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Dataset versions used for training.')


@app.command("list")
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
