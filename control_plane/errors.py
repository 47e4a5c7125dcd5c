"""One error hierarchy for the control plane: callers catch ``ControlPlaneError``.

Messages are for the operator: say what is wrong and how to fix it. The API maps
each class to one HTTP status (see ``api.app``).
"""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base of every error the control plane raises on purpose."""


class ConfigError(ControlPlaneError):
    """Settings, config file or on-disk state that cannot work."""


class NotFoundError(ControlPlaneError):
    """A model, version, release, device, rollout or artifact that does not exist (404)."""


class ConflictError(ControlPlaneError):
    """The request clashes with what is stored, e.g. a device id already taken (409)."""


class InvalidRequestError(ControlPlaneError):
    """A well-formed request that cannot be honoured as asked (422)."""


class StorageError(ControlPlaneError):
    """The artifact store cannot serve a request now: unreachable, refusing, or holding an
    object whose bytes do not match its name (503; nothing is half-stored)."""


class AuthError(ControlPlaneError):
    """No credential or an unknown/revoked one (401)."""


class PermissionDeniedError(ControlPlaneError):
    """A valid credential without the scope the call needs (403)."""
