"""Dependencies injected into routes: app state, a DB session, the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..artifacts import ContentStore
from ..config import ControlPlaneSettings
from ..keys import Keyring
from ..services.auth import Principal, authenticate
from ..services.devices import AgentEndpoints
from ..services.rollouts import DesiredStatePublisher
from ..store_metrics import StoreGauges


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
        )


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


def require(*any_of: str) -> Callable[..., Principal]:
    """A dependency passing when the bearer token holds one of ``any_of`` (401/403 otherwise)."""

    def dependency(request: Request, session: SessionDep) -> Principal:
        principal = authenticate(session, _bearer(request))
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
