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
    version: str | None = typer.Option(
        None, help="Version number or alias. Default: the champion alias, or the latest "
        "version of a model without one."),
    override_gate: bool = typer.Option(
        False, "--override-gate", help="Sign even though the version fails the release gate "
        "([release_gate]); needs --reason, and the audit log keeps both."),
    reason: str | None = typer.Option(None, "--reason", help="Why the gate is overridden."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Sign a release of a model version whose evaluation passes the release gate."""
    from ..errors import ControlPlaneError
    from .client import client_from, print_json

    if override_gate != (reason is not None):
        raise ControlPlaneError("--override-gate and --reason go together: "
                                "--override-gate --reason 'why it may ship anyway'")
    body = {"model_name": model, "version": version, "override_gate_reason": reason}
    with client_from(config) as api:
        release = api.post("/api/v1/releases", body)
    if as_json:
        print_json(release)
        return
    typer.echo(
        f"release {release['release_id']} ({model} v{release['model_version']}, "
        f"key {release['key_id']})"
    )
    if override_gate:
        typer.echo("  the release gate was overridden; the audit log keeps the reason")


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
