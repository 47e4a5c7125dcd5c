"""Registering a model version with the control plane over HTTP (docs/contracts.md).

Artifacts go first (``POST /api/v1/artifacts``, raw bytes, content hash in
``X-Content-Sha256``), then the version (``POST /api/v1/models/{name}/versions``
with a ``protocols.ModelVersionCreate``). Every failure is a RegistryError that
names the URL and the fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from protocols import ModelVersionCreate
from protocols.api_errors import ClientHints, answered, transport_failed, unreachable

from .errors import RegistryError


@dataclass(frozen=True)
class RegisteredVersion:
    model_name: str
    version: str
    response: dict[str, Any]


HINTS = ClientHints(
    reach="start it with `parkwatch serve`, or point --api-url / PARKWATCH_TRAINER_API_URL at it",
    token="use a token with the operate scope (--token or PARKWATCH_API_TOKEN)",
)


class RegistryClient:
    """A small client for the two calls the trainer makes."""

    def __init__(
        self,
        api_url: str,
        token: str | None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token:
            raise RegistryError(
                f"no API token to register with {api_url}: pass --token, or set "
                "PARKWATCH_TRAINER_API_TOKEN or PARKWATCH_API_TOKEN (an operate-scoped token; "
                "the admin token is in the control plane's <data_dir>/admin.token)"
            )
        self.api_url = api_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, what: str, **kwargs: Any) -> httpx.Response:
        return self._request("POST", path, what, **kwargs)

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        call = f"{what} ({method} {self.api_url}{path})"
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise RegistryError(unreachable(self.api_url, what, HINTS)) from None
        except httpx.HTTPError as exc:
            raise RegistryError(transport_failed(call, exc)) from None
        if response.status_code >= 400:
            raise RegistryError(answered(response.status_code, response.content, call=call,
                                         hints=HINTS, token_sent=True,
                                         reason=response.reason_phrase))
        return response

    def upload_artifact(self, data: bytes) -> str:
        """Upload bytes (idempotent); return their sha256 after checking the server agrees."""
        sha = hashlib.sha256(data).hexdigest()
        response = self._post(
            "/api/v1/artifacts",
            f"uploading artifact {sha[:12]}",
            content=data,
            headers={"Content-Type": "application/octet-stream", "X-Content-Sha256": sha},
        )
        got = response.json().get("sha256")
        if got != sha:
            raise RegistryError(f"control plane stored artifact as {got!r}, expected {sha}")
        return sha

    def register_version(self, registration: ModelVersionCreate) -> RegisteredVersion:
        name = registration.model_name
        response = self._post(
            f"/api/v1/models/{name}/versions",
            f"registering a version of {name}",
            content=registration.model_dump_json().encode(),
            headers={"Content-Type": "application/json"},
        )
        body = response.json()
        if not isinstance(body, dict) or "version" not in body:
            raise RegistryError(f"control plane answered without a version: {str(body)[:300]}")
        return RegisteredVersion(model_name=name, version=str(body["version"]), response=body)


    def update_job(self, job_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /api/v1/jobs/{job_id}`` with a JobUpdate body (status, progress, stage, ...)."""
        response = self._request(
            "PATCH",
            f"/api/v1/jobs/{job_id}",
            f"reporting to job {job_id}",
            json={k: v for k, v in changes.items() if v is not None},
        )
        body = response.json()
        return body if isinstance(body, dict) else {}


def register_model(
    client: RegistryClient, registration: ModelVersionCreate, artifacts: list[bytes]
) -> RegisteredVersion:
    """Upload ``artifacts`` (model files, report), then register the version."""
    for data in artifacts:
        client.upload_artifact(data)
    return client.register_version(registration)


__all__ = ["RegisteredVersion", "RegistryClient", "register_model"]
