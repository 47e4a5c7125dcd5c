"""What every API body shares: the page envelope, the error body, label keys and values,
scopes, and the health answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


Scope = Literal["read", "operate", "admin", "device"]


RolloutMode = Literal["active", "shadow"]


LabelKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")]


LabelValue = Annotated[str, Field(max_length=256)]


Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class ErrorBody(BaseModel):
    detail: str = Field(description="What is wrong and how to fix it.")


class AuditEntryPublic(BaseModel):
    id: int
    at: datetime
    who: str
    action: str
    target: str
    detail: dict[str, Any]


class ServiceHealth(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "error"]
    mqtt: Literal["connected", "disconnected", "disabled"]
    embedded_broker: bool
    services: dict[str, ServiceHealth] = Field(
        default_factory=dict,
        description="This process's long-running parts (broker, MQTT, drift analysis, rollout "
        "engine): whether each is running and how its last run went.",
    )
