"""API tokens: create (the secret is shown once), check, and the bootstrap admin token.

Scopes: ``read`` < ``operate`` < ``admin`` (each includes the ones before) and
``device`` (a provisioned agent: manifests and artifacts only).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from ..errors import (
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from ..store.models import ApiToken
from . import audit

log = logging.getLogger(__name__)

SCOPES = ("read", "operate", "admin", "device")
_RANK = {"read": 1, "operate": 2, "admin": 3}
TOKEN_PREFIX = "pw_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name (used in audit entries), scopes, device."""

    name: str
    scopes: frozenset[str]
    device_id: str | None = None
    token_id: int | None = None

    def has(self, scope: str) -> bool:
        if scope == "device":
            return "device" in self.scopes
        rank = max((_RANK.get(s, 0) for s in self.scopes), default=0)
        return rank >= _RANK[scope]

    def require(self, *any_of: str) -> None:
        """Pass when the principal holds at least one of ``any_of``."""
        if not any(self.has(s) for s in any_of):
            need = " or ".join(repr(s) for s in any_of)
            raise PermissionDeniedError(
                f"token {self.name!r} has scopes {sorted(self.scopes)}, this call needs {need}: "
                "create one with `parkwatch tokens create --scope ...`"
            )


LOCAL_ADMIN = Principal(name="local-admin", scopes=frozenset({"admin"}))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = sorted(set(scopes))
    if not chosen:
        raise InvalidRequestError(f"a token needs at least one scope of {SCOPES}")
    bad = [s for s in chosen if s not in SCOPES]
    if bad:
        raise InvalidRequestError(f"unknown scope(s) {bad}; choose from {SCOPES}")
    return chosen


def create_token(
    session: Session,
    name: str,
    scopes: Iterable[str],
    *,
    who: str,
    device_id: str | None = None,
) -> tuple[ApiToken, str]:
    """Add a new token to the session and return it with its secret (shown only now).

    The caller commits (provisioning adds the device and its token in one transaction).
    """
    if not name or len(name) > 128:
        raise InvalidRequestError("a token needs a name of 1-128 characters")
    chosen = _check_scopes(scopes)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_sha256=hash_token(secret), name=name, scopes=" ".join(chosen), device_id=device_id
    )
    session.add(row)
    audit.record(session, who, "token.create", f"token:{name}", scopes=chosen, device_id=device_id)
    return row, secret


def authenticate(session: Session, token: str | None) -> Principal:
    """The principal for a bearer token; AuthError when missing, unknown or revoked."""
    if not token:
        raise AuthError(
            "missing bearer token: send `Authorization: Bearer <token>` (the admin token is "
            "in <data_dir>/admin.token)"
        )
    row = session.exec(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token))).first()
    if row is None or row.revoked:
        raise AuthError("unknown or revoked token: create one with `parkwatch tokens create`")
    return Principal(
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        device_id=row.device_id,
        token_id=row.id,
    )


def list_tokens(
    session: Session, *, limit: int, offset: int, include_revoked: bool = True
) -> tuple[list[ApiToken], int]:
    """Tokens without their secrets (only hashes are stored anyway)."""
    where = [] if include_revoked else [col(ApiToken.revoked).is_(False)]
    total = session.exec(select(func.count()).select_from(ApiToken).where(*where)).one()
    rows = session.exec(
        select(ApiToken).where(*where).order_by(col(ApiToken.id)).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def revoke_token(
    session: Session, token_id: int, *, who: str, caller_token_id: int | None
) -> ApiToken:
    """Revoke a token (idempotent); refuses the caller's own token so no one locks
    themselves out by accident."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFoundError(f"no token {token_id}: see `parkwatch tokens list`")
    if caller_token_id is not None and caller_token_id == token_id:
        raise ConflictError(
            "this is the token making the request: revoke it with another admin token"
        )
    if not row.revoked:
        row.revoked = True
        session.add(row)
        audit.record(session, who, "token.revoke", f"token:{row.name}", token_id=token_id)
        session.commit()
    return row


def bootstrap_admin_token(session: Session, path: Path) -> bool:
    """With no token stored yet, create an admin token and write it to ``path`` (0600).

    Returns True when a token was created.
    """
    if session.exec(select(func.count()).select_from(ApiToken)).one() > 0:
        return False
    _row, secret = create_token(session, "bootstrap-admin", ["admin"], who="system")
    session.commit()
    write_secret(path, secret)
    log.warning("created the first admin token", extra={"path": str(path)})
    return True


def write_secret(path: Path, secret: str) -> None:
    """Write a secret to ``path`` readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
