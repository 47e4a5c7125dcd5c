"""The HTTP API (docs/contracts.md): ``create_app(settings)`` builds it."""

from .app import create_app

__all__ = ["create_app"]
