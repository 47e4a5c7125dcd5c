"""``/api/v1/artifacts``: upload by body, download by sha256 with Range support."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ...errors import InvalidRequestError
from ...schemas import ArtifactPublic
from ...services import registry
from ...store.artifacts import check_sha256, is_sha256
from ...store.db import session_scope
from ..deps import DeviceOrReadDep, OperateDep, StateDep

router = APIRouter(prefix="/artifacts", tags=["artifacts"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ArtifactPublic)
async def upload_artifact(
    request: Request,
    state: StateDep,
    principal: OperateDep,
    x_content_sha256: Annotated[
        str | None,
        Header(description="The upload's sha256, checked after the last byte.",
               json_schema_extra={"pattern": "^[0-9a-fA-F]{64}$"}),
    ] = None,
) -> ArtifactPublic:
    """Store the request body; idempotent (the same bytes give the same answer)."""
    if x_content_sha256 is not None and not is_sha256(x_content_sha256.lower()):
        raise InvalidRequestError("X-Content-Sha256 must be 64 hex chars")
    writer = state.store.begin(max_bytes=state.settings.max_artifact_bytes)
    try:
        async for chunk in request.stream():
            if chunk:
                await run_in_threadpool(writer.write, chunk)
    except BaseException:
        writer.abort()
        raise
    sha256, size = await run_in_threadpool(writer.commit, x_content_sha256)

    def record() -> None:
        with session_scope(state.engine) as session:
            registry.record_artifact(session, sha256, size, who=principal.name)

    await run_in_threadpool(record)
    return ArtifactPublic(sha256=sha256, size_bytes=size)


@router.head("/{sha256}", response_model=None, summary="Artifact size, ETag and digest")
def head_artifact(
    sha256: str, request: Request, state: StateDep, _principal: DeviceOrReadDep
) -> Response:
    """Headers only (``Content-Length``, ``ETag``, ``Repr-Digest``): the store is asked for
    the size, so a bucket's object is not downloaded to answer."""
    headers = _headers(check_sha256(sha256))
    size = state.store.size(sha256)
    if _not_modified(request, headers):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(headers={**headers, "Content-Length": str(size)},
                    media_type="application/octet-stream")


@router.get("/{sha256}", response_model=None, summary="Download an artifact (Range supported)")
def download_artifact(
    sha256: str, request: Request, state: StateDep, _principal: DeviceOrReadDep
) -> Response:
    """The artifact's bytes; ``Range`` gives 206, an unsatisfiable range 416."""
    headers = _headers(check_sha256(sha256))  # before any store access: a bad name is 404
    if _not_modified(request, headers):  # the client holds it: only ask that it still exists
        state.store.size(sha256)
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    path = state.store.path(sha256)
    return FileResponse(path, media_type="application/octet-stream", headers=headers)


def _headers(sha256: str) -> dict[str, str]:
    return {
        "ETag": f'"{sha256}"',
        "Accept-Ranges": "bytes",
        "Repr-Digest": f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:",
        "Cache-Control": "private, max-age=31536000, immutable",
    }


def _not_modified(request: Request, headers: dict[str, str]) -> bool:
    tags = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
    return headers["ETag"] in tags
