"""``parkwatch tokens``: API tokens (local: acts on the store directly; over HTTP:
``/api/v1/tokens``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    ConfigOpt,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    fails_cleanly,
    local_store,
)

app = typer.Typer(no_args_is_help=True, help='API tokens.')


@app.command("create")
@fails_cleanly
def tokens_create(
    name: str = typer.Option(..., help="Who holds the token (shown in the audit log)."),
    scope: list[str] = typer.Option(..., help="read, operate, admin or device; repeatable."),
    config: Path | None = ConfigOpt,
) -> None:
    """Create an API token; the secret is printed once and never stored."""
    from ..services import auth
    from ..store.db import session_scope

    engine = local_store(config)
    try:
        with session_scope(engine) as session:
            _row, secret = auth.create_token(session, name, scope, who=auth.LOCAL_ADMIN.name)
    finally:
        engine.dispose()
    typer.echo(secret)


@app.command("list")
@fails_cleanly
def tokens_list(
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    include_revoked: bool = typer.Option(True, "--all/--active", help="Show revoked ones too."),
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """API tokens (never their secrets)."""
    from ..services import auth
    from ..store.db import session_scope
    from .client import print_json, print_table

    engine = local_store(config)
    try:
        with session_scope(engine) as session:
            rows, total = auth.list_tokens(
                session, limit=limit, offset=offset, include_revoked=include_revoked
            )
            items = [
                {
                    "id": r.id,
                    "name": r.name,
                    "scopes": r.scopes,
                    "device_id": r.device_id,
                    "created_at": r.created_at.isoformat(),
                    "revoked": r.revoked,
                }
                for r in rows
            ]
    finally:
        engine.dispose()
    if as_json:
        print_json({"items": items, "total": total, "limit": limit, "offset": offset})
    else:
        print_table(
            items,
            ["id", "name", "scopes", "device_id", "created_at", "revoked"],
            title="tokens",
            total=total,
        )


@app.command("revoke")
@fails_cleanly
def tokens_revoke(token_id: int, config: Path | None = ConfigOpt) -> None:
    """Revoke a token by id (see `parkwatch tokens list`); idempotent."""
    from ..services import auth
    from ..store.db import session_scope

    engine = local_store(config)
    try:
        with session_scope(engine) as session:
            row = auth.revoke_token(
                session, token_id, who=auth.LOCAL_ADMIN.name, caller_token_id=None
            )
            name = row.name
    finally:
        engine.dispose()
    typer.echo(f"token {token_id} ({name}) is revoked")
