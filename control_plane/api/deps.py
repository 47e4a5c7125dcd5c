"""Dependencies injected into routes: app state, a DB session, the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from ..errors import AuthError
from ..services.auth import Principal, authenticate
from .ratelimit import retry_after_header
from .state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.parkwatch
    return state


StateDep = Annotated[AppState, Depends(get_state)]


_READS_ONLY: set[Callable[..., Any]] = set()
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def reads_only(endpoint: Endpoint) -> Endpoint:
    """Marks a route that writes nothing (below its ``@router.get``): its session, the
    authentication's included, runs each statement on its own (``db.statement_by_statement``),
    so its statements may see different commits (a page's total and its items)."""
    _READS_ONLY.add(endpoint)
    return endpoint


def get_session(request: Request, state: StateDep) -> Iterator[Session]:
    route = request.scope.get("route")
    only_reads = getattr(route, "endpoint", None) in _READS_ONLY
    with Session(state.read_engine if only_reads else state.engine,
                 expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# Declares the scheme in OpenAPI, so /docs offers "Authorize"; a missing or non-bearer header
# is None here and a 401 from check_credentials, worded like every other auth failure.
BearerDep = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="An API token: `pw_...`.")),
]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_credentials(
    session: Session, state: AppState, client: str, token: str | None
) -> Principal:
    """The principal of ``token`` (verified within auth_cache_seconds: ``token_cache``), or
    AuthError (401); 429 once ``client`` has failed too often. A valid token always passes:
    another caller's failures from the same address (a NAT, a proxy) never lock it out. A
    limited client's guesses still cost one indexed lookup each, and a 256-bit token cannot
    be guessed at any rate."""
    try:
        return state.tokens.principal(token, lambda: authenticate(session, token))
    except AuthError:
        limiter = state.auth_limiter
        wait = limiter.retry_after(client)
        if wait is not None:
            seconds = retry_after_header(wait)
            raise HTTPException(
                status_code=429,
                detail=f"too many authentication failures from {client}: retry in {seconds} s "
                "with a valid token",
                headers={"Retry-After": seconds},
            ) from None
        limiter.failed(client)
        raise


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def require(*any_of: str) -> Callable[..., Principal]:
    """A dependency passing when the bearer token holds one of ``any_of`` (401/403 otherwise;
    429 for an invalid token from a client address that failed authentication too often)."""

    def dependency(
        request: Request, session: SessionDep, state: StateDep, bearer: BearerDep
    ) -> Principal:
        # The body guard authenticates a request with a body before reading it.
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            token = bearer.credentials if bearer is not None else None
            principal = check_credentials(session, state, client_address(request), token)
        principal.require(*any_of)
        return principal

    return dependency


ReadDep = Annotated[Principal, Depends(require("read"))]
OperateDep = Annotated[Principal, Depends(require("operate"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
DeviceOrReadDep = Annotated[Principal, Depends(require("device", "read"))]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=1000, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]

# Ids in paths: bounded so an absurd number is a 422/404, never a store overflow.
IntId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Numeric id.")]
BigIntId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Numeric id.")]
