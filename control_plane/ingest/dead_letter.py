"""Dead letters: received messages that failed to store alone, kept instead of dropped.

The pipeline (``batch``) writes a run of messages again one by one when the run fails
with a non-transient error; a message that still fails alone would fail the same way on
every redelivery, so it is acknowledged. Before that, it is written here (in its own
transaction, retried on transient errors like any write): a bug in the store path then
delays the message, it does not lose it. ``replay`` runs each kept message through the
same store path again once the cause is fixed; what stores is deleted, what fails again
stays with its new error (``parkwatch dead-letters list`` / ``replay``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from protocols import decode_for_topic, device_topic
from protocols.topics import TopicKind

from ..errors import ControlPlaneError, NotFoundError
from ..services.device_messages import StatusReceipt
from ..store.db import session_scope
from ..store.models import DeadLetter
from .batch import DEVICE_KINDS, is_transient, one_line
from .store import IngestStore

_PAGE = 100  # rows replayed per read


def message_json(message: Any) -> str:
    """The validated message as the device sent it (a status without its receipt)."""
    model = message.status if isinstance(message, StatusReceipt) else message
    return cast(BaseModel, model).model_dump_json(by_alias=True)


def keep(engine: Engine, *, kind: str, device_id: str, message: Any, error: str,
         received_at: datetime) -> None:
    """Write one failed message, in its own transaction (the caller retries transient
    errors)."""
    with session_scope(engine) as session:
        session.add(DeadLetter(
            received_at=received_at, kind=kind, device_id=device_id,
            topic=device_topic(device_id, cast(TopicKind, kind)),  # the one it came on
            message=message_json(message), error=error))


def listing(session: Session, limit: int, offset: int = 0) -> list[DeadLetter]:
    """The oldest kept messages first (they are replayed in that order)."""
    return list(session.exec(
        select(DeadLetter).order_by(col(DeadLetter.id)).offset(offset).limit(limit)))


def count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(DeadLetter)).one())


@dataclass(frozen=True)
class Replayed:
    outcomes: Counter[str]  # deleted, by what ingest made of each (stored, duplicate, ...)
    failed: int  # failed again: kept, with the new error
    errors: dict[int, str]  # the new error of each that failed again, by id


def replay(engine: Engine, store: IngestStore, only: int | None = None) -> Replayed:
    """Run every kept message (or the one ``only`` names) through ingest's store path
    again, oldest first; a window keeps the time it was first received (it rolls up into
    that hour, and ages from it)."""
    outcomes: Counter[str] = Counter()
    errors: dict[int, str] = {}
    failed = after = 0
    if only is not None:
        with session_scope(engine) as session:
            if session.get(DeadLetter, only) is None:
                raise NotFoundError(f"no dead letter {only}: replayed or deleted already "
                                    "(parkwatch dead-letters list)")
        after = only - 1
    while True:
        with session_scope(engine) as session:
            query = select(DeadLetter).where(col(DeadLetter.id) > after)
            if only is not None:
                query = query.where(col(DeadLetter.id) == only)
            rows = [(r.id, r.kind, r.message, r.received_at) for r in session.exec(
                query.order_by(col(DeadLetter.id)).limit(_PAGE))]
        if not rows:
            return Replayed(outcomes, failed, errors)
        for row_id, kind, text, received_at in rows:
            assert row_id is not None
            after = row_id
            done = _store_again(store, kind, text, received_at)
            with session_scope(engine) as session:
                if isinstance(done, Counter):
                    session.exec(delete(DeadLetter).where(col(DeadLetter.id) == row_id))
                    outcomes.update(done)
                else:
                    row = session.get(DeadLetter, row_id)
                    if row is not None:
                        row.error = done
                    failed += 1
                    errors[row_id] = done


def _store_again(store: IngestStore, kind: str, text: str,
                 received_at: datetime) -> Counter[str] | str:
    """What ingest made of the message (writes are idempotent: a copy is a duplicate), or
    the error it failed with again."""
    try:
        message: Any = decode_for_topic(cast(TopicKind, kind), text.encode())
        if kind == "status":  # old news: no clock skew is measured from a replayed status
            message = StatusReceipt(message, retained=True)
        if kind == "telemetry":
            return store.write_windows([message], received_at=received_at)
        if kind in DEVICE_KINDS:
            done = store.write_device(cast(Sequence[Any], [message]))
            return Counter({outcome: n for (_kind, outcome), n in done.items()})
        return f"ValueError: ingest does not store {kind!r} messages"
    except Exception as exc:
        if is_transient(exc):
            raise ControlPlaneError(
                f"the store is unavailable ({one_line(exc)}); run the replay again") from None
        return one_line(exc)


__all__ = ["Replayed", "count", "keep", "listing", "message_json", "replay"]
