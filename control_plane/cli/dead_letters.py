"""``parkwatch dead-letters``: messages ingest could not store (local: acts on the store).

A message that failed to store alone with a non-transient error was kept in the
``dead_letter`` table before it was acknowledged; once the cause is fixed (an upgrade),
``replay`` stores them through ingest's own store path.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ConfigOpt, JsonOpt, LimitOpt, fails_cleanly, local_store

app = typer.Typer(no_args_is_help=True, help="Messages ingest could not store, to replay.")


@app.command("list")
@fails_cleanly
def dead_letters_list(
    config: Path | None = ConfigOpt, as_json: bool = JsonOpt, limit: int = LimitOpt
) -> None:
    """Kept messages, oldest first, with the error each last failed with."""
    from ..ingest import dead_letter
    from ..store.db import session_scope
    from .client import print_json, print_table

    engine = local_store(config)
    try:
        with session_scope(engine) as session:
            items = [{"id": r.id, "received_at": r.received_at.isoformat(), "kind": r.kind,
                      "device_id": r.device_id, "topic": r.topic, "error": r.error,
                      **({"message": r.message} if as_json else {})}
                     for r in dead_letter.listing(session, limit)]
    finally:
        engine.dispose()
    if as_json:
        print_json({"items": items, "limit": limit})
    elif not items:
        typer.echo("no dead letters: every message received was stored")
    else:
        print_table(items, ["id", "received_at", "kind", "device_id", "error"],
                    title="dead letters")


@app.command("replay")
@fails_cleanly
def dead_letters_replay(config: Path | None = ConfigOpt) -> None:
    """Store every kept message again; what stores is deleted, the rest keeps its new error.

    Desired states a replayed report shows to be behind are stored here and sent on the
    control plane's next (re)connect to the broker."""
    from ..api.state import UnpublishedDesired
    from ..ingest import dead_letter
    from ..ingest.store import IngestStore

    engine = local_store(config)
    try:
        done = dead_letter.replay(engine, IngestStore(engine, UnpublishedDesired()))
    finally:
        engine.dispose()
    made = ", ".join(f"{n} {outcome}" for outcome, n in sorted(done.outcomes.items()))
    typer.echo(f"replayed: {done.outcomes.total()} done ({made or 'none'}), {done.failed} "
               "failed again (parkwatch dead-letters list)")
    if done.failed:
        raise typer.Exit(1)
