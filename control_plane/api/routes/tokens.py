"""``/api/v1/tokens``: create, list (never the secrets) and revoke API tokens (admin)."""

from __future__ import annotations

from fastapi import APIRouter, status

from ...schemas import Page, TokenCreate, TokenCreated, TokenPublic
from ...services import auth
from ...store.models import ApiToken
from ..deps import AdminDep, IntId, PageDep, SessionDep, StateDep

router = APIRouter(prefix="/tokens", tags=["tokens"])


def _public(row: ApiToken) -> TokenPublic:
    return TokenPublic(
        id=row.id or 0,
        name=row.name,
        scopes=row.scopes.split(),
        device_id=row.device_id,
        created_at=row.created_at,
        revoked=row.revoked,
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a token (secret shown once)")
def create_token(body: TokenCreate, session: SessionDep, principal: AdminDep) -> TokenCreated:
    row, secret = auth.create_token(session, body.name, body.scopes, who=principal.name)
    session.commit()
    return TokenCreated(**_public(row).model_dump(), token=secret)


@router.get("", summary="List tokens without their secrets")
def list_tokens(
    session: SessionDep, page: PageDep, _p: AdminDep, include_revoked: bool = True
) -> Page[TokenPublic]:
    rows, total = auth.list_tokens(
        session, limit=page.limit, offset=page.offset, include_revoked=include_revoked
    )
    return Page(items=[_public(r) for r in rows], total=total, limit=page.limit, offset=page.offset)


@router.delete("/{token_id}", summary="Revoke a token (idempotent, audited)")
def revoke_token(token_id: IntId, session: SessionDep, state: StateDep,
                 principal: AdminDep) -> TokenPublic:
    row = auth.revoke_token(
        session, token_id, who=principal.name, caller_token_id=principal.token_id
    )
    state.tokens.forget_all()  # committed: refused from the next call on, not in a few seconds
    return _public(row)
