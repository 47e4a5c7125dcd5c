"""Registering a model version with the control plane over HTTP (docs/contracts.md).

Artifacts go first (``POST /api/v1/artifacts``, raw bytes, content hash in
``X-Content-Sha256``), then the version (``POST /api/v1/models/{name}/versions``
with a ``protocols.ModelVersionCreate``). Before a run trains, :meth:`RegistryClient.
check_can_register` asks the control plane, without changing anything, whether the
registration would be accepted (reachable, token known, scope). Every failure is a
RegistryError that names the URL and the fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from protocols import ModelVersionCreate
from protocols.api_errors import ClientHints, answered, error_detail, transport_failed, unreachable

from .errors import RegistryError

TOKEN_FIX = ("pass a token with the operate scope: --token or PARKWATCH_API_TOKEN (create one "
             "with `parkwatch tokens create --name trainer --scope operate`)")
URL_FIX = "start it with `parkwatch serve`, or point --api-url / PARKWATCH_API_URL at it"
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RegisteredVersion:
    model_name: str
    version: str
    response: dict[str, Any]


HINTS = ClientHints(reach=URL_FIX, token=TOKEN_FIX)


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
                "PARKWATCH_API_TOKEN (an operate-scoped token: `parkwatch tokens create --name "
                "trainer --scope operate`; the admin token is in the control plane's "
                "<data_dir>/admin.token)"
            )
        self.api_url = api_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
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

    def _request(
        self, method: str, path: str, what: str, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """Send one request; a RegistryError naming the fix for anything but success or
        a status in ``accept``."""
        call = f"{what} ({method} {self.api_url}{path})"
        try:
            response = self._client.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            why = "no answer" if isinstance(exc, httpx.ConnectTimeout) else "connection failed"
            raise RegistryError(unreachable(self.api_url, f"{what}: {why}", HINTS)) from None
        except httpx.HTTPError as exc:
            raise RegistryError(transport_failed(call, exc)) from None
        if response.status_code >= 400 and response.status_code not in accept:
            raise RegistryError(answered(response.status_code, response.content, call=call,
                                         hints=HINTS, token_sent=True,
                                         reason=response.reason_phrase))
        return response

    def check_can_register(self, model_name: str) -> str:
        """Check, changing nothing, that a version of ``model_name`` would be accepted.

        ``/healthz`` says whether a parkwatch control plane answers at all. Then an empty
        body goes to the registration route: the API checks the token and its scope before
        it validates a body, so 422 means the token may register (401: unknown token,
        403: no operate scope). Returns a line for the console.
        """
        health = self._request("GET", "/healthz", "checking the control plane",
                               accept=tuple(range(400, 600)))  # judged below, by its body
        try:
            status = health.json().get("status")
        except (ValueError, AttributeError):
            status = None
        detail = error_detail(health.content, health.reason_phrase)
        if status is None:
            raise RegistryError(
                f"{self.api_url} answers, but not as a parkwatch control plane (GET /healthz: "
                f"{health.status_code} {detail[:80]!r}): check --api-url / PARKWATCH_API_URL"
            )
        if health.status_code == 503:
            raise RegistryError(
                f"the control plane at {self.api_url} is degraded ({detail[:200]}): "
                "see its log, then train again"
            )
        self._request(
            "POST", f"/api/v1/models/{model_name}/versions",
            f"checking that the token may register {model_name}", accept=(422,),
            content=b"{}", headers={"Content-Type": "application/json"},
        )
        return f"{self.api_url} ({status}), token may register {model_name}"

    def find_registered(self, registration: ModelVersionCreate) -> RegisteredVersion | None:
        """The version already registered from this very run (same primary artifact and
        report), or None: what makes registering a folder twice a no-op."""
        params: dict[str, str | int] = {
            "model": registration.model_name,
            "dataset_version": registration.lineage.dataset_version, "limit": 1000, "offset": 0,
        }
        while True:
            page = self._request("GET", "/api/v1/versions", "looking for this version",
                                 params=params).json()
            for item in page.get("items", []):
                if (item.get("primary_sha256") == registration.primary_sha256
                        and item.get("report_sha256") == registration.report_sha256):
                    return RegisteredVersion(registration.model_name, str(item["version"]), item)
            params["offset"] = int(params["offset"]) + len(page.get("items", []))
            if not page.get("items") or int(params["offset"]) >= int(page.get("total", 0)):
                return None

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
