"""What every API body shares: the page envelope, the error body, label keys and values,
scopes, and the health answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

T = TypeVar("T")


Scope = Literal["read", "operate", "admin", "device"]


RolloutMode = Literal["active", "shadow"]


LabelKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")]


LabelValue = Annotated[str, Field(max_length=256)]


def _as_utc(value: datetime) -> datetime:
    # An offset near year 1 or 9999 overflows once normalised: refuse it here, as a 422,
    # rather than in the store's conversion, as a 500.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            "is out of range once converted to UTC: give a date between 0001-01-02 and "
            "9999-12-30 with a timezone, e.g. 2026-05-01T12:00:00Z"
        ) from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""A timezone-aware instant, normalised to UTC; out-of-range values are a 422."""

PLAUSIBLE_SINCE = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_AHEAD = timedelta(days=1)


def _plausible(value: datetime) -> datetime:
    # A device clock years off (no RTC, no NTP yet) must not date a sample into the future.
    latest = datetime.now(UTC) + MAX_CLOCK_AHEAD
    if not PLAUSIBLE_SINCE <= value <= latest:
        raise ValueError(
            f"{value.isoformat()} is not a plausible capture time: it must lie between "
            f"{PLAUSIBLE_SINCE.date()} and one day from now (check the device's clock and NTP)"
        )
    return value


RecentUtcDatetime = Annotated[UtcDatetime, AfterValidator(_plausible)]
"""An instant a device observed: UTC, after 2000 and at most a day ahead of this clock."""


Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _keys_as_validated(schema: dict[str, Any]) -> None:
    """Rewrite pydantic's ``patternProperties`` for a dict with a key pattern as
    ``propertyNames`` + ``additionalProperties``: the server refuses a key off the pattern,
    and ``patternProperties`` alone tells clients any other key is allowed, with any value."""
    for value in schema.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                _keys_as_validated(item)
    patterns = schema.get("patternProperties")
    if schema.get("type") == "object" and isinstance(patterns, dict) and len(patterns) == 1:
        (pattern, values), = patterns.items()
        del schema["patternProperties"]
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
        schema["additionalProperties"] = values


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_keys_as_validated)


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
