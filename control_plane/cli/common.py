"""Options and error handling shared by the control plane's CLI modules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
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
# The control plane an operator command talks to, as given on its command line; read by
# ``client.client_from`` (flags win over PARKWATCH_API_URL / PARKWATCH_API_TOKEN and the file).
_api_flags: ContextVar[dict[str, str | None] | None] = ContextVar("parkwatch_api_flags",
                                                                  default=None)
_API_PARAMETERS = (
    inspect.Parameter(
        "api_url", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
        default=typer.Option(None, "--api-url", help="Control plane URL (else "
                             "PARKWATCH_API_URL, else api_url in the config file)."),
    ),
    inspect.Parameter(
        "token", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
        default=typer.Option(None, "--token", help="API token (else PARKWATCH_API_TOKEN, "
                             "else <data_dir>/admin.token)."),
    ),
)


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


def with_api_options(fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` with the ``--api-url`` and ``--token`` options every operator command takes;
    ``cli/__init__`` applies it to every command of the operator groups."""
    signature = inspect.signature(fn, eval_str=True)
    if {"api_url", "token"} & set(signature.parameters):
        return fn  # declares its own; the vocabulary test checks it is --api-url / --token

    @functools.wraps(fn)
    def wrapper(*args: Any, api_url: str | None = None, token: str | None = None,
                **kwargs: Any) -> R:
        reset = _api_flags.set({"api_url": api_url, "api_token": token})
        try:
            return fn(*args, **kwargs)
        finally:
            _api_flags.reset(reset)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
              if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD else p
              for p in signature.parameters.values()]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*params, *_API_PARAMETERS])
    return wrapper


def renamed(now: str) -> Any:
    """The deprecation line of an old command name, kept for one version. Typed Any: typer
    hands ``deprecated`` to click, which prints a string after its warning (typer types it
    bool)."""
    return f"Use `parkwatch {now}`: the old name goes in the next version."


def api_flags() -> dict[str, str | None]:
    """``--api-url`` and ``--token`` of the operator command running now (None: not given)."""
    return _api_flags.get() or {}


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
