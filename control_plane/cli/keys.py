"""``parkwatch keys``: release-signing keys (local: acts on ``<data_dir>/keys``)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..errors import ControlPlaneError
from .common import (
    ConfigOpt,
    JsonOpt,
    fails_cleanly,
    server_settings,
)

app = typer.Typer(no_args_is_help=True, help='Release-signing keys.')


@app.command("init")
@fails_cleanly
def keys_init(
    config: Path | None = ConfigOpt,
    rotate: bool = typer.Option(False, help="Make a new key active (old ones stay trusted)."),
) -> None:
    """Create the release-signing key (no-op if one exists, unless --rotate)."""
    from ..store.keys import Keyring

    ring = Keyring(server_settings(config).keys_dir)
    key_id = ring.rotate() if rotate else ring.init()
    typer.echo(f"active signing key: {key_id}")


@app.command("rotate")
@fails_cleanly
def keys_rotate(config: Path | None = ConfigOpt) -> None:
    """Make a new signing key active; old public keys stay, so old releases still verify."""
    from ..store.keys import Keyring

    ring = Keyring(server_settings(config).keys_dir)
    old = ring.active_key_id() if ring.initialised else None
    key_id = ring.rotate()
    typer.echo(f"active signing key: {key_id}" + (f" (was {old}, still trusted)" if old else ""))
    typer.echo("give agents the new key too: `parkwatch keys export --out trusted.pem`")


@app.command("list")
@fails_cleanly
def keys_list(config: Path | None = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """Signing keys: the active one and those kept to verify older releases."""
    from ..store.keys import Keyring
    from .client import print_json, print_table

    ring = Keyring(server_settings(config).keys_dir)
    active = ring.active_key_id() if ring.initialised else None
    rows = [{"key_id": k, "active": k == active} for k in ring.public_pems()]
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["key_id", "active"], title="signing keys")


@app.command("export")
@fails_cleanly
def keys_export(
    config: Path | None = ConfigOpt,
    all_keys: bool = typer.Option(
        True, "--all/--active-only", help="Every trusted key (default), or only the active."
    ),
    out: Path | None = typer.Option(None, help="Write to this file instead of stdout."),
) -> None:
    """Print the public key(s) agents must trust, as PEM."""
    from ..store.keys import Keyring

    ring = Keyring(server_settings(config).keys_dir)
    pem = b"".join(ring.public_pems().values()) if all_keys else ring.public_pem()
    if not pem:
        raise ControlPlaneError("no signing key yet: run `parkwatch keys init`")
    if out is None:
        sys.stdout.write(pem.decode())
    else:
        out.write_bytes(pem)
        typer.echo(f"wrote {out}")
