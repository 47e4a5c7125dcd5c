"""Fleet-operations commands: device groups, alerts, drift reports, training jobs, audit log.

They talk to the HTTP API like every operator command (``cli_operator``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from .cli_common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly, parse_pairs

groups_app = typer.Typer(no_args_is_help=True, help="Device groups (named label selectors).")
alerts_app = typer.Typer(no_args_is_help=True, help="Alerts: list, acknowledge, resolve.")
drift_app = typer.Typer(no_args_is_help=True, help="Drift reports.")
jobs_app = typer.Typer(no_args_is_help=True, help="Training jobs.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log (admin token).")


# -- groups ----------------------------------------------------------------------------------
@groups_app.command("create")
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


@groups_app.command("list")
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


@groups_app.command("show")
@fails_cleanly
def groups_show(name: str, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One group (list its devices with `parkwatch devices list --group NAME`)."""
    from .client import show_record

    show_record(config, f"/api/v1/groups/{name}", name, as_json)


@groups_app.command("delete")
@fails_cleanly
def groups_delete(name: str, config: Path | None = ConfigOpt) -> None:
    """Delete a group; its devices keep their labels."""
    from .client import client_from

    with client_from(config) as api:
        api.delete(f"/api/v1/groups/{name}")
    typer.echo(f"deleted group {name}")


# -- alerts ----------------------------------------------------------------------------------
@alerts_app.command("list")
@fails_cleanly
def alerts_list(
    state: str | None = typer.Option(None, help="open, acknowledged or resolved."),
    severity: str | None = typer.Option(None, help="info, warning or critical."),
    device: str | None = typer.Option(None, help="Only this device."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Alerts, newest first."""
    from .client import show_page

    columns = ["id", "state", "severity", "kind", "device_id", "message", "created_at"]
    params = {"state": state, "severity": severity, "device": device}
    show_page(
        config, "/api/v1/alerts", columns, "alerts", as_json, limit=limit, offset=offset, **params
    )


def _move_alert(alert_id: int, state: str, note: str | None, config: Path | None) -> None:
    from .client import client_from

    with client_from(config) as api:
        row = api.patch(f"/api/v1/alerts/{alert_id}", {"state": state, "note": note})
    typer.echo(f"alert {alert_id} is {row['state']}")


@alerts_app.command("ack")
@fails_cleanly
def alerts_ack(
    alert_id: int, note: str | None = typer.Option(None), config: Path | None = ConfigOpt
) -> None:
    """Acknowledge an alert (audited)."""
    _move_alert(alert_id, "acknowledged", note, config)


@alerts_app.command("resolve")
@fails_cleanly
def alerts_resolve(
    alert_id: int, note: str | None = typer.Option(None), config: Path | None = ConfigOpt
) -> None:
    """Resolve an alert (audited)."""
    _move_alert(alert_id, "resolved", note, config)


# -- drift -----------------------------------------------------------------------------------
@drift_app.command("list")
@fails_cleanly
def drift_list(
    device: str | None = typer.Option(None, help="Only this device."),
    release: str | None = typer.Option(None, help="Only this release."),
    drifted: bool | None = typer.Option(None, "--drifted/--not-drifted", help="By verdict."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Drift reports, newest first."""
    from .client import show_page

    columns = [
        "id",
        "device_id",
        "release_id",
        "drifted",
        "window_count",
        "sample_count",
        "window_end",
    ]
    params = {"device": device, "release": release, "drifted": drifted}
    show_page(
        config,
        "/api/v1/drift",
        columns,
        "drift reports",
        as_json,
        limit=limit,
        offset=offset,
        **params,
    )


@drift_app.command("show")
@fails_cleanly
def drift_show(report_id: int, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One drift report with its statistics and alarm levels."""
    from .client import show_record

    show_record(config, f"/api/v1/drift/{report_id}", f"drift report {report_id}", as_json)


# -- jobs ------------------------------------------------------------------------------------
@jobs_app.command("list")
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


@jobs_app.command("show")
@fails_cleanly
def jobs_show(job_id: str, config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """One training job."""
    from .client import show_record

    show_record(config, f"/api/v1/jobs/{job_id}", job_id, as_json)


@jobs_app.command("create")
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


# -- audit -----------------------------------------------------------------------------------
@audit_app.command("list")
@fails_cleanly
def audit_list(
    action: str | None = typer.Option(None, help="e.g. alias.set, rollout.start."),
    who: str | None = typer.Option(None, help="Token name."),
    target: str | None = typer.Option(None, help="Prefix, e.g. model:petnet."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Who did what, newest first."""
    from .client import show_page

    columns = ["at", "who", "action", "target", "detail"]
    show_page(
        config,
        "/api/v1/audit",
        columns,
        "audit log",
        as_json,
        limit=limit,
        offset=offset,
        action=action,
        who=who,
        target=target,
    )
