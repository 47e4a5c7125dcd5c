"""The ``register`` stage: upload the model files and report.json to the control plane
(by content hash), then register the version (``docs/contracts.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import resolve_token
from ..errors import TrainerError
from ..registry_client import RegistryClient, register_model
from ..runner import Figure, RunContext
from .write import Written


@dataclass(frozen=True)
class Registered:
    version: str
    response: dict[str, Any]  # the control plane's answer (registered.json)

    def figures(self) -> dict[str, Figure]:
        return {"version": self.version}


def register_stage(ctx: RunContext) -> Registered:
    s, written = ctx.settings, ctx[Written]
    if not s.api_url:
        raise TrainerError("registering needs the control plane's URL: pass --api-url")
    with RegistryClient(s.api_url, resolve_token(s)) as client:
        version = register_model(client, written.registration,
                                 [*written.artifacts, written.report_bytes])
    ctx.write_json("registered.json", version.response)
    return Registered(version.version, version.response)


__all__ = ["Registered", "register_stage"]
