"""``parkwatch samples``: uploaded samples (list, label, reject)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True, help='Uploaded samples: list, label, reject.')


def _update(sample_id: int, body: dict[str, object], config: Path | None) -> None:
    from .client import client_from

    with client_from(config) as api:
        row = api.patch(f"/api/v1/samples/{sample_id}", body)
    label = f" as {row['label']}" if row.get("label") else ""
    typer.echo(f"sample {sample_id} is {row['status']}{label}")


@app.command("list")
@fails_cleanly
def samples_list(
    status: str | None = typer.Option(None, help="new, labelled or rejected."),
    device: str | None = typer.Option(None, help="Only this device."),
    max_confidence: float | None = typer.Option(None, help="Only at most this confidence."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Samples agents uploaded, newest first (the JPEG: GET /api/v1/artifacts/<sha256>)."""
    from .client import show_page

    columns = ["id", "device_id", "predicted_label", "confidence", "status", "label",
               "dataset_version", "image_sha256", "captured_at"]
    show_page(config, "/api/v1/samples", columns, "samples", as_json, limit=limit,
              offset=offset, status=status, device=device, max_confidence=max_confidence)


@app.command("label")
@fails_cleanly
def samples_label(
    sample_id: int,
    label: str,
    note: str | None = typer.Option(None, help="Why (kept in the audit log)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Label a sample; it joins the next dataset version the worker builds."""
    _update(sample_id, {"status": "labelled", "label": label, "note": note}, config)


@app.command("reject")
@fails_cleanly
def samples_reject(
    sample_id: int,
    note: str | None = typer.Option(None, help="Why (kept in the audit log)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Reject a sample: it never enters a dataset."""
    _update(sample_id, {"status": "rejected", "note": note}, config)
