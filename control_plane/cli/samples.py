"""``parkwatch samples``: uploaded samples (list, label, reject, confirm negatives)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, OffsetOpt, fails_cleanly

app = typer.Typer(no_args_is_help=True,
                  help="Uploaded samples: list, label, reject; confirm the negatives agents mined.")


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
    negatives: bool | None = typer.Option(
        None, "--negatives/--no-negatives",
        help="Only the candidate negatives agents mined (or only the other samples)."),
    config: Path | None = ConfigOpt,
    as_json: bool = JsonOpt,
    limit: int = LimitOpt,
    offset: int = OffsetOpt,
) -> None:
    """Samples agents uploaded, newest first (the JPEG: GET /api/v1/artifacts/<sha256>)."""
    from .client import show_page

    columns = ["id", "device_id", "camera_id", "predicted_label", "confidence", "candidate",
               "status", "label", "dataset_version", "image_sha256", "captured_at"]
    negative = None if negatives is None else str(negatives).lower()
    show_page(config, "/api/v1/samples", columns, "samples", as_json, limit=limit,
              offset=offset, status=status, device=device, max_confidence=max_confidence,
              negative=negative)


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


@app.command("confirm")
@fails_cleanly
def samples_confirm(
    sample_ids: list[int] = typer.Argument(..., help="Candidate negatives (samples list "
                                           "--negatives)."),
    note: str | None = typer.Option(None, help="Why (kept in the audit log)."),
    config: Path | None = ConfigOpt,
) -> None:
    """Confirm candidate negatives show no animal: labelled 'other', they join the next
    dataset version's background class. One showing an animal: `samples label ID dog`."""
    from .client import client_from

    with client_from(config) as api:
        for sample_id in sample_ids:
            row = api.post(f"/api/v1/samples/{sample_id}/confirm", {"note": note})
            typer.echo(f"sample {sample_id} is {row['status']} as {row['label']}")
