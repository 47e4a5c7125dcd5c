"""Installing one release: retries, throttling, and a newer desired state cutting a wait
short (pure logic: a stand-in store that refuses as the control plane would)."""

from __future__ import annotations

import threading

import pytest

from edge_agent.errors import DownloadCancelled, DownloadError, ThrottledError
from edge_agent.release_install import DOWNLOAD_RETRIES, install_with_retries


class RefusingStore:
    """Answers every install with ``error``; counts the tries."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.tries = 0

    def install(self, target: str, cancelled: object = None) -> object:
        self.tries += 1
        raise self.error


@pytest.mark.timeout(60)
def test_a_newer_desired_state_cuts_a_throttled_wait_short() -> None:
    # Asked to come back in an hour; the operator rolls back a moment later.
    store = RefusingStore(ThrottledError("429", retry_after=3600.0))
    wanted = threading.Event()
    threading.Timer(0.2, wanted.set).start()
    with pytest.raises(DownloadCancelled):
        install_with_retries(store, "r2", wanted.is_set, threading.Event())  # type: ignore[arg-type]
    assert store.tries == 1


@pytest.mark.timeout(60)
def test_a_failed_download_is_tried_a_few_times_then_fails() -> None:
    store = RefusingStore(DownloadError("connection reset"))
    with pytest.raises(DownloadError):
        install_with_retries(store, "r2", lambda: False, threading.Event())  # type: ignore[arg-type]
    assert store.tries == DOWNLOAD_RETRIES


@pytest.mark.timeout(60)
def test_stopping_the_agent_ends_a_throttled_wait() -> None:
    store = RefusingStore(ThrottledError("429", retry_after=3600.0))
    stopping = threading.Event()
    threading.Timer(0.2, stopping.set).start()
    with pytest.raises(ThrottledError):
        install_with_retries(store, "r2", lambda: False, stopping)  # type: ignore[arg-type]
    assert store.tries == 1
