"""``/api/v1/dead-letters``: the messages ingest could not store, and their replay.

A replay runs each message through ingest's own store path (``ingest.dead_letter``);
what stores is deleted, what fails again stays with its new error. Replays are audited.
"""

from __future__ import annotations

from fastapi import APIRouter

from ...ingest import dead_letter
from ...ingest.store import IngestStore
from ...schemas import DeadLetterPublic, DeadLetterReplay, Page
from ...services import audit
from ...store.db import session_scope
from ..deps import BigIntId, OperateDep, PageDep, ReadDep, SessionDep, StateDep, reads_only

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])
_ERRORS_SHOWN = 100


@router.get("", summary="List the messages ingest could not store, oldest first")
@reads_only
def list_dead_letters(session: SessionDep, page: PageDep, _p: ReadDep) -> Page[DeadLetterPublic]:
    rows = dead_letter.listing(session, page.limit, page.offset)
    items = [DeadLetterPublic.model_validate(r, from_attributes=True) for r in rows]
    return Page(items=items, total=dead_letter.count(session), limit=page.limit,
                offset=page.offset)


@router.post("/replay", summary="Store every dead letter again (audited)")
def replay_all(state: StateDep, principal: OperateDep) -> DeadLetterReplay:
    return _replay(state, principal.name, None)


@router.post("/{dead_letter_id}/replay", summary="Store one dead letter again (audited)")
def replay_one(dead_letter_id: BigIntId, state: StateDep,
               principal: OperateDep) -> DeadLetterReplay:
    return _replay(state, principal.name, dead_letter_id)


def _replay(state: StateDep, who: str, only: int | None) -> DeadLetterReplay:
    done = dead_letter.replay(state.engine, IngestStore(state.engine, state.publisher), only)
    answer = DeadLetterReplay(
        done=done.outcomes.total(), outcomes=dict(done.outcomes), failed=done.failed,
        errors=dict(list(done.errors.items())[:_ERRORS_SHOWN]))
    with session_scope(state.engine) as session:
        audit.record(session, who, "dead_letter.replay",
                     "dead_letter:all" if only is None else f"dead_letter:{only}",
                     done=answer.done, failed=answer.failed)
    return answer
