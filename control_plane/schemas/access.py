"""Access bodies and answers: API tokens and the release-signing keys agents trust."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from .common import RequestBody, Scope


class TokenCreate(RequestBody):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, max_length=4)


class TokenPublic(BaseModel):
    id: int
    name: str
    scopes: list[str]
    device_id: str | None
    created_at: datetime
    revoked: bool


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret; shown only in this answer.")


class KeyPublic(BaseModel):
    key_id: str
    active: bool
    public_key_pem: str
