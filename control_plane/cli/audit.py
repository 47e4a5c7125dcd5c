"""``parkwatch audit``: the audit log (admin token)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='The audit log (admin token).')


# -- audit -----------------------------------------------------------------------------------
@app.command("list")
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
