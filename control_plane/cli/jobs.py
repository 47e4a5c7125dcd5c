"""``parkwatch jobs``: training jobs (list, show, create)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Training jobs.')


# -- jobs ------------------------------------------------------------------------------------
@app.command("list")
@fails_cleanly
def jobs_list(
    status: str | None = typer.Option(None, help="queued, running, succeeded, ..."),
    model: str | None = typer.Option(None, help="Only this model."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Training jobs, newest first."""
    from .client import show_page

    columns = ["job_id", "model_name", "trigger", "status", "progress", "stage", "updated_at"]
    show_page(
        config,
        "/api/v1/jobs",
        columns,
        "jobs",
        as_json,
        limit=limit,
        offset=offset,
        status=status,
        model=model,
    )


@app.command("show")
@fails_cleanly
def jobs_show(job_id: str, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One training job."""
    from .client import show_record

    show_record(config, f"/api/v1/jobs/{job_id}", job_id, as_json)


@app.command("create")
@fails_cleanly
def jobs_create(
    model: str,
    dataset: str | None = typer.Option(None, help="Dataset version to train on."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Queue a training job (the trainer picks it up and reports progress)."""
    from .client import client_from, print_json

    body = {"model_name": model, "trigger": "manual", "dataset_version": dataset}
    with client_from(config) as api:
        row = api.post("/api/v1/jobs", body)
    if as_json:
        print_json(row)
    else:
        typer.echo(f"job {row['job_id']} queued for {model}")
