"""The operator CLI's HTTP client and output helpers (rich tables, or JSON for scripts)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from protocols.api_errors import ClientHints, answered, transport_failed, unreachable

from ..config import ClientSettings
from ..errors import ControlPlaneError

HINTS = ClientHints(
    reach="start it with `parkwatch serve`, or point --api-url / PARKWATCH_API_URL at it",
    token="pass --token or set PARKWATCH_API_TOKEN, or run where <data_dir>/admin.token is "
    "readable (PARKWATCH_DATA_DIR)",
)


class CliError(ControlPlaneError):
    """A failure the CLI reports as one line and a non-zero exit."""


class ApiClient:
    """Thin wrapper over httpx: bearer auth, errors that say how to fix them."""

    def __init__(self, settings: ClientSettings, timeout: float | None = None) -> None:
        import httpx

        timeout = settings.api_timeout_seconds if timeout is None else timeout
        self.timeout = timeout
        self.base = settings.api_url.rstrip("/")
        token = settings.token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout)
        self._has_token = token is not None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        call = f"{method} {path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(unreachable(self.base, call, HINTS)) from None
        except httpx.TimeoutException as exc:
            stage = "connect" if isinstance(exc, httpx.ConnectTimeout) else "answer"
            raise CliError(
                f"{call}: {self.base} did not {stage} within {self.timeout:g}s: check that it "
                "is the control plane and that it is not stuck (its log, /healthz); wait "
                "longer with `parkwatch --timeout SECONDS ...` (PARKWATCH_API_TIMEOUT_SECONDS)"
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(transport_failed(f"{call} to {self.base}", exc, HINTS)) from None
        if response.is_error:
            raise CliError(answered(response.status_code, response.content, call=call,
                                    hints=HINTS, token_sent=self._has_token,
                                    reason=response.reason_phrase))
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None and v != []}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def client_from(config: Path | None) -> ApiClient:
    """A client of the API named by the command's flags, else the environment and file."""
    from .common import api_flags

    return ApiClient(ClientSettings.load(config, **api_flags()))


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))[:80]
    return str(value)


def print_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    title: str | None = None,
    total: int | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(columns):
        # The first column is the id an operator copies into the next command: never cut it.
        table.add_column(column, no_wrap=i == 0, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console = Console()
    console.print(table)
    if total is not None and total > len(rows):
        console.print(f"{len(rows)} of {total} shown (use --limit/--offset)")


def print_record(record: dict[str, Any], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in record.items():
        shown = (
            json.dumps(value, indent=1, sort_keys=True)
            if isinstance(value, dict | list)
            else _cell(value)
        )
        table.add_row(key, shown)
    Console().print(table)


def show_page(
    config: Path | None,
    path: str,
    columns: Sequence[str],
    title: str,
    as_json: bool,
    /,
    **params: Any,
) -> None:
    """GET one page of a list endpoint; print it as JSON or as a table of ``columns``.

    ``params`` are the query (``limit``, ``offset``, filters); None and [] are left out.
    """
    with client_from(config) as api:
        page = api.get(path, **params)
    if as_json:
        print_json(page)
    else:
        print_table(page["items"], columns, title=title, total=page["total"])


def show_record(
    config: Path | None,
    path: str,
    title: str | Callable[[dict[str, Any]], str],
    as_json: bool,
) -> None:
    """GET one record; print it as JSON or as a field/value table.

    ``title`` may be a function of the record, for titles that need a field of it.
    """
    with client_from(config) as api:
        record = api.get(path)
    if as_json:
        print_json(record)
    else:
        print_record(record, title=title if isinstance(title, str) else title(record))
