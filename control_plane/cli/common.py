"""Options and error handling shared by the control plane's CLI modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from ..errors import ConfigError, ControlPlaneError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ..config import ControlPlaneSettings

P = ParamSpec("P")
R = TypeVar("R")

ConfigOpt = typer.Option(None, "--config", "-c", help="TOML config file (or PARKWATCH_CONFIG).")
JsonOpt = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
LimitOpt = typer.Option(100, "--limit", min=1, max=1000, help="Items per page.")
OffsetOpt = typer.Option(0, "--offset", min=0, help="Items to skip.")


def fails_cleanly(fn: Callable[P, R]) -> Callable[P, R]:
    """Report a ControlPlaneError as one line on stderr and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ControlPlaneError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def parse_pairs(values: list[str], what: str) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; ``what`` names the items in the error (label, selector)."""
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ControlPlaneError(f"{what} {item!r} must look like key=value")
        pairs[key] = value
    return pairs


def server_settings(config: Path | None, **overrides: Any) -> ControlPlaneSettings:
    """The server's settings, for the local commands that act on its store and files."""
    from ..config import ControlPlaneSettings

    return ControlPlaneSettings.load(config, **overrides)


def require_store(settings: ControlPlaneSettings) -> None:
    """Refuse, in one line naming the fix, when the store ``serve`` would use does not exist:
    a command run from another folder must not create a second, empty store."""
    from ..store.db import describe_store, store_exists

    if not store_exists(settings.resolved_database_url):
        raise ConfigError(
            f"no parkwatch store at {describe_store(settings.resolved_database_url)}: run this "
            "where `parkwatch serve` runs, or give it serve's settings (--config, "
            "PARKWATCH_CONFIG, PARKWATCH_DATA_DIR or PARKWATCH_DATABASE_URL); a new site "
            "creates its store with `parkwatch db upgrade`"
        )


def local_store(config: Path | None) -> Engine:
    """An engine on the server's existing store, migrated to the latest schema (the caller
    disposes it)."""
    from ..store.db import create_db_engine, upgrade

    settings = server_settings(config)
    require_store(settings)
    upgrade(settings.resolved_database_url)
    return create_db_engine(settings.resolved_database_url)
