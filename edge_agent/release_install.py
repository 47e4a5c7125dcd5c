"""Installing one release: download with retries (a throttled download waits as asked and
costs no attempt), and the checks a verified release must still pass before it serves."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from protocols.manifest import version_tuple

from . import __version__
from .errors import AgentError, DownloadCancelled, DownloadError, ThrottledError
from .releases import InstalledRelease, ReleaseStore

log = logging.getLogger(__name__)

DOWNLOAD_RETRIES = 3
MAX_THROTTLE_S = 1800.0  # past this much waiting on 429s, the install fails
SUPERSEDED_POLL_S = 0.5  # how often a retry's wait looks for a newer desired state


def check_agent_version(release: InstalledRelease) -> None:
    needed = release.manifest.min_agent_version
    if version_tuple(needed) > version_tuple(__version__):
        raise AgentError(f"release {release.release_id} needs agent >= {needed}, "
                         f"this is {__version__}")


def _wait(seconds: float, stopping: threading.Event, superseded: Callable[[], bool]) -> bool:
    """Wait before a retry; True as soon as the agent stops. A newer desired state cuts the
    wait short too (the retry loop then gives up on the release no longer wanted)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stopping.wait(min(left, SUPERSEDED_POLL_S)):
            return True
        if superseded():
            return False
    return False


def install_with_retries(store: ReleaseStore, target: str, superseded: Callable[[], bool],
                         stopping: threading.Event) -> InstalledRelease:
    """Install ``target``: a failed download is tried DOWNLOAD_RETRIES times; a throttled
    one (429, Retry-After) waits as asked and costs no attempt, up to MAX_THROTTLE_S in
    all, so a busy control plane delays a wave rather than failing it."""
    attempt, throttled_s = 0, 0.0
    while True:
        try:
            return store.install(target, cancelled=superseded)
        except DownloadCancelled:
            raise
        except ThrottledError as exc:
            wait = min(max(1.0, exc.retry_after), MAX_THROTTLE_S - throttled_s)
            if wait <= 0 or stopping.is_set():
                raise
            throttled_s += wait
            log.info("download of %s throttled; waiting %.0f s as asked", target, wait,
                     extra={"release_id": target})
            if _wait(wait, stopping, superseded):
                raise
        except DownloadError as exc:
            attempt += 1
            if attempt >= DOWNLOAD_RETRIES or stopping.is_set():
                raise
            log.warning("download of %s failed (%s); retrying", target, exc,
                        extra={"release_id": target})
            if _wait(2.0 ** (attempt - 1), stopping, superseded):
                raise
        if superseded():  # no retry for a release no longer wanted
            raise DownloadCancelled(f"install of {target} stopped")
