"""``parkwatch mqtt``: broker password/ACL files from the registry, and dev certificates."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, fails_cleanly, local_store, server_settings

app = typer.Typer(no_args_is_help=True, help='Broker credentials, ACLs and certificates.')


@app.command("acl")
@fails_cleanly
def mqtt_acl(
    out: Path = typer.Option(..., help="Folder for `passwd` and `acl` (the broker reads them)."),
    config: Path | None = ConfigOpt,
    service_account: list[str] = typer.Option(
        ["parkwatch-control-plane"],
        help="Broker login of a control-plane process; repeat for each ingest worker.",
    ),
    rotate_secret: bool = typer.Option(
        False, help="New credential secret: every device needs its new password (re-provision)."
    ),
    show_service_password: bool = typer.Option(
        False, help="Print the service accounts' passwords (for PARKWATCH_MQTT_PASSWORD)."
    ),
) -> None:
    """Write Mosquitto's password file and ACL from the device registry.

    Every device with a live device token gets a login that may write only under its own
    devices/{id}/ and read only its own desired state; anonymous clients get nothing.
    Reload the broker afterwards (SIGHUP).
    """
    from ..broker import acl as mqtt_acl
    from ..store.db import session_scope

    settings = server_settings(config)
    if rotate_secret:
        mqtt_acl.rotate_secret(settings.data_dir)
    secret = mqtt_acl.load_secret(settings.data_dir)
    engine = local_store(config)
    try:
        with session_scope(engine) as session:
            accounts = mqtt_acl.accounts_from_registry(session, secret, tuple(service_account))
    finally:
        engine.dispose()
    passwd, acl = mqtt_acl.write_broker_files(out, accounts)
    n_devices = len(accounts) - len(service_account)
    typer.echo(f"wrote {passwd} and {acl}: {n_devices} device(s), {len(service_account)} service")
    for account in accounts[: len(service_account)]:
        shown = account.password if show_service_password else "(hidden: --show-service-password)"
        typer.echo(f"service account {account.username}: password {shown}")


@app.command("dev-certs")
@fails_cleanly
def mqtt_dev_certs(
    out: Path = typer.Option(..., help="Folder for ca.pem, server.pem and server.key."),
    host: list[str] = typer.Option(["localhost", "127.0.0.1"], help="Broker name or IP."),
    days: int = typer.Option(30, min=1, max=825, help="Validity in days."),
    client: list[str] = typer.Option(
        [], help="Also make a client certificate with this name (mutual TLS); repeatable."
    ),
) -> None:
    """Make a throw-away CA and broker certificate (and client certificates for mutual
    TLS) for tests and development only."""
    from ..broker.devcerts import make_client_cert, make_dev_certs

    certs = make_dev_certs(out, list(host), days)
    typer.echo(f"wrote {certs.ca_cert}, {certs.server_cert} and {certs.server_key}")
    for name in client:
        cert, key = make_client_cert(certs, name, days)
        typer.echo(f"wrote client certificate {cert} and key {key}")
