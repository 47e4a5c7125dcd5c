"""Encoding and validated decoding of payloads, with per-type size caps."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ._errors import ProtocolError
from .messages import (
    DesiredState,
    DeviceCommand,
    DeviceEvent,
    DeviceStatus,
    ReportedState,
    SignedDesiredState,
    Snapshot,
    TelemetryWindow,
)
from .topics import TopicKind

M = TypeVar("M", bound=BaseModel)

# Caps in bytes. A message over its cap is refused before it is parsed.
MAX_PAYLOAD_BYTES: dict[str, int] = {
    "DesiredState": 16 * 1024,
    "SignedDesiredState": 32 * 1024,
    "ReportedState": 64 * 1024,
    "DeviceStatus": 2 * 1024,
    "TelemetryWindow": 256 * 1024,
    "DeviceEvent": 8 * 1024,
    "DeviceCommand": 2 * 1024,
    "Snapshot": 6 * 1024 * 1024,
    "ReleaseManifest": 4 * 1024 * 1024,
    "SignedManifest": 6 * 1024 * 1024,
}
DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024

MESSAGE_FOR_TOPIC: dict[TopicKind, type[BaseModel]] = {
    "desired": DesiredState,
    "desired_signed": SignedDesiredState,
    "reported": ReportedState,
    "status": DeviceStatus,
    "telemetry": TelemetryWindow,
    "events": DeviceEvent,
    "commands": DeviceCommand,
}


def size_cap(model: type[BaseModel]) -> int:
    return MAX_PAYLOAD_BYTES.get(model.__name__, DEFAULT_MAX_PAYLOAD_BYTES)


def encode(message: BaseModel) -> bytes:
    """Serialise a payload to compact JSON bytes; refuse one over its size cap."""
    data = message.model_dump_json(by_alias=True).encode()
    cap = size_cap(type(message))
    if len(data) > cap:
        raise ProtocolError(f"{type(message).__name__} is {len(data)} bytes, over its cap of {cap}")
    return data


def decode(model: type[M], payload: bytes | bytearray | memoryview | str) -> M:
    """Parse and validate ``payload`` as ``model``; any failure is a ProtocolError."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    cap = size_cap(model)
    if len(raw) > cap:
        raise ProtocolError(f"{model.__name__} payload is {len(raw)} bytes, over its cap of {cap}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise ProtocolError(f"invalid {model.__name__}: {_summarise(exc)}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"invalid {model.__name__}: {exc}"[:500]) from None


def decode_for_topic(kind: TopicKind, payload: bytes | bytearray | memoryview) -> BaseModel:
    """Decode a payload by the kind of topic it arrived on."""
    return decode(MESSAGE_FOR_TOPIC[kind], payload)


def _summarise(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def json_schemas() -> dict[str, object]:
    """JSON Schema of every wire model, keyed by model name."""
    from .manifest import ReleaseManifest, SignedManifest
    from .registry import ModelVersionCreate

    models: list[type[BaseModel]] = [
        *MESSAGE_FOR_TOPIC.values(),
        Snapshot,
        ReleaseManifest,
        SignedManifest,
        ModelVersionCreate,
    ]
    return {m.__name__: m.model_json_schema(by_alias=True) for m in models}


def dumps_schemas() -> str:
    return json.dumps(json_schemas(), indent=2, sort_keys=True)
