"""``parkwatch`` commands of the control plane (merged at the top level of the root CLI).

Local admin commands (``serve``, ``db upgrade``, ``keys``, ``tokens create``) act on
the store directly (here); operator commands talk to the API over HTTP
(``cli_operator``). Heavy imports (fastapi, sqlmodel, httpx) happen inside the
commands, so ``parkwatch --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from .cli_common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly
from .cli_fleet import alerts_app, audit_app, drift_app, groups_app, jobs_app
from .cli_loop import samples_app, worker_command
from .cli_mqtt import mqtt_app
from .cli_operator import devices_app, release_app, telemetry_app
from .cli_registry import aliases_app, datasets_app, models_app, versions_app
from .cli_rollouts import rollout_app
from .errors import ControlPlaneError

app = typer.Typer(no_args_is_help=True, help="Control plane: registry, releases, rollouts.")
db_app = typer.Typer(no_args_is_help=True, help="The control plane's database.")
keys_app = typer.Typer(no_args_is_help=True, help="Release-signing keys.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens.")
for _sub, _name in (
    (db_app, "db"),
    (keys_app, "keys"),
    (tokens_app, "tokens"),
    (devices_app, "devices"),
    (models_app, "models"),
    (release_app, "release"),
    (rollout_app, "rollout"),
    (telemetry_app, "telemetry"),
    (versions_app, "versions"),
    (aliases_app, "aliases"),
    (datasets_app, "datasets"),
    (groups_app, "groups"),
    (alerts_app, "alerts"),
    (drift_app, "drift"),
    (jobs_app, "jobs"),
    (audit_app, "audit"),
    (samples_app, "samples"),
    (mqtt_app, "mqtt"),
):
    app.add_typer(_sub, name=_name)

app.command("worker")(worker_command)

def _server_settings(config: Path | None, **overrides: Any) -> Any:
    from .config import ControlPlaneSettings

    return ControlPlaneSettings.load(config, **overrides)


# -- local admin commands ------------------------------------------------------------------
@app.command()
@fails_cleanly
def serve(
    config: Path | None = ConfigOpt,
    role: str | None = typer.Option(
        None,
        help="all (default: API + ingest + embedded broker if no mqtt_url), api (HTTP only) "
        "or ingest (MQTT ingest only; several share the load via ingest_share_group).",
    ),
) -> None:
    """Run the control plane: HTTP API, MQTT ingest, and a broker if none is configured."""
    from .server import serve as run

    if role is not None and role not in ("all", "api", "ingest"):
        raise ControlPlaneError(f"--role {role!r}: choose all, api or ingest")
    overrides = {"role": role} if role is not None else {}
    run(_server_settings(config, **overrides))


@db_app.command("upgrade")
@fails_cleanly
def db_upgrade(config: Path | None = ConfigOpt) -> None:
    """Create or migrate the schema to the latest revision."""
    from .db import upgrade

    settings = _server_settings(config)
    upgrade(settings.resolved_database_url)
    typer.echo("database is up to date")


@keys_app.command("init")
@fails_cleanly
def keys_init(
    config: Path | None = ConfigOpt,
    rotate: bool = typer.Option(False, help="Make a new key active (old ones stay trusted)."),
) -> None:
    """Create the release-signing key (no-op if one exists, unless --rotate)."""
    from .keys import Keyring

    ring = Keyring(_server_settings(config).keys_dir)
    key_id = ring.rotate() if rotate else ring.init()
    typer.echo(f"active signing key: {key_id}")


@keys_app.command("rotate")
@fails_cleanly
def keys_rotate(config: Path | None = ConfigOpt) -> None:
    """Make a new signing key active; old public keys stay, so old releases still verify."""
    from .keys import Keyring

    ring = Keyring(_server_settings(config).keys_dir)
    old = ring.active_key_id() if ring.initialised else None
    key_id = ring.rotate()
    typer.echo(f"active signing key: {key_id}" + (f" (was {old}, still trusted)" if old else ""))
    typer.echo("give agents the new key too: `parkwatch keys export --out trusted.pem`")


@keys_app.command("list")
@fails_cleanly
def keys_list(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Signing keys: the active one and those kept to verify older releases."""
    from .client import print_json, print_table
    from .keys import Keyring

    ring = Keyring(_server_settings(config).keys_dir)
    active = ring.active_key_id() if ring.initialised else None
    rows = [{"key_id": k, "active": k == active} for k in ring.public_pems()]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["key_id", "active"], title="signing keys")


@keys_app.command("export")
@fails_cleanly
def keys_export(
    config: Path | None = ConfigOpt,
    all_keys: bool = typer.Option(
        True, "--all/--active-only", help="Every trusted key (default), or only the active."
    ),
    out: Path | None = typer.Option(None, help="Write to this file instead of stdout."),
) -> None:
    """Print the public key(s) agents must trust, as PEM."""
    from .keys import Keyring

    ring = Keyring(_server_settings(config).keys_dir)
    pem = b"".join(ring.public_pems().values()) if all_keys else ring.public_pem()
    if not pem:
        raise ControlPlaneError("no signing key yet: run `parkwatch keys init`")
    if out is None:
        sys.stdout.write(pem.decode())
    else:
        out.write_bytes(pem)
        typer.echo(f"wrote {out}")


@tokens_app.command("create")
@fails_cleanly
def tokens_create(
    name: str = typer.Option(..., help="Who holds the token (shown in the audit log)."),
    scope: list[str] = typer.Option(..., help="read, operate, admin or device; repeatable."),
    config: Path | None = ConfigOpt,
) -> None:
    """Create an API token; the secret is printed once and never stored."""
    from .db import create_db_engine, session_scope, upgrade
    from .services import auth

    settings = _server_settings(config)
    upgrade(settings.resolved_database_url)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with session_scope(engine) as session:
            _row, secret = auth.create_token(session, name, scope, who=auth.LOCAL_ADMIN.name)
    finally:
        engine.dispose()
    typer.echo(secret)


def _local_store(config: Path | None) -> Any:
    from .db import create_db_engine, upgrade

    settings = _server_settings(config)
    upgrade(settings.resolved_database_url)
    return create_db_engine(settings.resolved_database_url)


@tokens_app.command("list")
@fails_cleanly
def tokens_list(
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    include_revoked: bool = typer.Option(True, "--all/--active", help="Show revoked ones too."),
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """API tokens (never their secrets)."""
    from .client import print_json, print_table
    from .db import session_scope
    from .services import auth

    engine = _local_store(config)
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


@tokens_app.command("revoke")
@fails_cleanly
def tokens_revoke(token_id: int, config: Path | None = ConfigOpt) -> None:
    """Revoke a token by id (see `parkwatch tokens list`); idempotent."""
    from .db import session_scope
    from .services import auth

    engine = _local_store(config)
    try:
        with session_scope(engine) as session:
            row = auth.revoke_token(
                session, token_id, who=auth.LOCAL_ADMIN.name, caller_token_id=None
            )
            name = row.name
    finally:
        engine.dispose()
    typer.echo(f"token {token_id} ({name}) is revoked")
