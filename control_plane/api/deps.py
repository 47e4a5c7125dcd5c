"""Dependencies injected into routes: app state, a DB session, the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config import ControlPlaneSettings
from ..errors import AuthError
from ..rollouts.service import DesiredStatePublisher
from ..services.auth import Principal, authenticate
from ..services.devices import AgentEndpoints
from ..store.artifacts import ContentStore
from ..store.gauges import StoreGauges
from ..store.keys import Keyring
from .ratelimit import AuthFailureLimiter, retry_after_header


@dataclass
class AppState:
    """What the running app holds; built by the lifespan in ``api.app``."""

    settings: ControlPlaneSettings
    engine: Engine
    store: ContentStore
    keyring: Keyring
    publisher: DesiredStatePublisher
    mqtt: Any = None  # MqttAdapter when MQTT is enabled
    broker: Any = None  # EmbeddedBroker when one runs in-process
    gauges: StoreGauges | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def agent_endpoints(self) -> AgentEndpoints:
        return AgentEndpoints(
            control_plane_url=self.settings.resolved_public_url,
            mqtt_url=self.settings.agent_mqtt_url,
            trusted_public_keys=[p.decode() for p in self.keyring.public_pems().values()],
            mqtt_credentials=(
                self._device_mqtt_login if self.settings.mqtt_device_credentials else None
            ),
        )

    def _device_mqtt_login(self, device_id: str, token_id: int) -> tuple[str, str]:
        from ..broker.acl import device_account, load_secret

        account = device_account(load_secret(self.settings.data_dir), device_id, token_id)
        return account.username, account.password


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.parkwatch
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_limiter(state: AppState) -> AuthFailureLimiter:
    """The app's limiter of authentication failures (made on first use)."""
    limiter = state.extras.get("auth_limiter")
    if limiter is None:
        limiter = state.extras.setdefault(
            "auth_limiter",
            AuthFailureLimiter(
                state.settings.auth_failure_limit, state.settings.auth_failure_window_seconds
            ),
        )
    assert isinstance(limiter, AuthFailureLimiter)
    return limiter


def require(*any_of: str) -> Callable[..., Principal]:
    """A dependency passing when the bearer token holds one of ``any_of`` (401/403 otherwise;
    429 for a client address that failed authentication too often)."""

    def dependency(request: Request, session: SessionDep, state: StateDep) -> Principal:
        limiter = auth_limiter(state)
        client = request.client.host if request.client else "unknown"
        wait = limiter.retry_after(client)
        if wait is not None:
            seconds = retry_after_header(wait)
            raise HTTPException(
                status_code=429,
                detail=f"too many authentication failures from {client}: retry in {seconds} s "
                "with a valid token",
                headers={"Retry-After": seconds},
            )
        try:
            principal = authenticate(session, _bearer(request))
        except AuthError:
            limiter.failed(client)
            raise
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
