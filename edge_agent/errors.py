"""The agent's error hierarchy: callers catch :class:`AgentError`."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose; the message is meant for a log line."""


class ConfigError(AgentError):
    """The agent configuration is invalid; the message names the bad key."""


class ReleaseError(AgentError):
    """A release could not be fetched, verified or installed."""


class DownloadError(ReleaseError):
    """The control plane could not be reached or answered with an error."""


class DownloadCancelled(DownloadError):
    """A download or its verification stopped because a newer desired state arrived."""


class ThrottledError(DownloadError):
    """The control plane asked us to come back later (429, or 503 with Retry-After): not a
    failure of the release; ``retry_after`` is the wait it asked for, in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VerificationError(ReleaseError):
    """A manifest signature, an artifact hash or size, or an installed file does not verify."""


class ModelError(AgentError):
    """A model could not be loaded, failed its smoke test or produced non-finite outputs."""


class OutboxError(AgentError):
    """The store-and-forward queue could not be opened or written."""
