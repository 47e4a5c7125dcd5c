"""Settings of the operator CLI: where the API is and which token to send. It reads the
server's config file too, and ignores the server's keys."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from .loader import TomlSettings
from .server import ADMIN_TOKEN_FILE


class ClientSettings(TomlSettings):
    """What the operator CLI needs to reach the API (reads the server's file too)."""

    model_config = SettingsConfigDict(env_prefix="PARKWATCH_", extra="ignore")
    settings_name: ClassVar[str] = "CLI settings"

    api_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL of the control plane's HTTP API."
    )
    api_token: str | None = Field(
        None, description="Bearer token; unset: read <data_dir>/admin.token."
    )
    data_dir: Path = Field(
        Path("./.parkwatch"), description="Where to look for admin.token when api_token is unset."
    )
    api_timeout_seconds: float = Field(
        10.0, gt=0, le=3600,
        description="Seconds the CLI waits for the API to connect, answer or accept a chunk "
        "before it gives up (`parkwatch --timeout` sets it for one command).",
    )

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL of the control "
                             "plane (e.g. http://127.0.0.1:8000)")
        return value

    def token(self) -> str | None:
        """The token to send: ``api_token``, else the bootstrap admin token file, else None."""
        if self.api_token:
            return self.api_token
        path = self.data_dir / ADMIN_TOKEN_FILE
        try:
            text = path.read_text().strip()
        except OSError:
            return None
        return text or None
