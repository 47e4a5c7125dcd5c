"""The shadow slot: a candidate release served beside the active one.

The release worker installs the candidate aside, verifies and smoke-tests it, and the
inference loop mirrors a fraction of the frames to it (``InferenceLoop.set_shadow``).
The candidate's files stay pinned in the store while it shadows, so a clean-up of old
releases cannot delete the model the loop is running. Its status is part of the
reported state; clean windows of compared frames make it ``healthy`` like an active
release.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from protocols import AgentSettings as DesiredSettings
from protocols import ProtocolError, ReleaseStatus, ShadowSummary

from .errors import AgentError, DownloadCancelled
from .pipeline import InferenceLoop
from .release_install import check_agent_version, install_with_retries
from .release_states import advance, begin
from .releases import InstalledRelease, ReleaseStore
from .runtime import ModelRuntime

log = logging.getLogger(__name__)

CANCELLED = "cancelled: a newer desired state arrived"


class ShadowSlot:
    """Starts, keeps and stops the shadow candidate; thread-safe status for reports."""

    def __init__(self, store: ReleaseStore, loop: InferenceLoop,
                 warm: Callable[[InstalledRelease], ModelRuntime],
                 superseded: Callable[[], bool], stopping: threading.Event) -> None:
        self._store = store
        self._loop = loop
        self._warm = warm
        self._superseded = superseded
        self._stopping = stopping
        self._lock = threading.Lock()
        self._status: ReleaseStatus | None = None
        self.fraction = DesiredSettings().shadow_fraction

    @property
    def status(self) -> ReleaseStatus | None:
        with self._lock:
            return self._status

    def start(self, candidate: str) -> str | None:
        """Install, verify and smoke-test ``candidate``; mirror frames to it. Why not, or None
        (``CANCELLED``: a newer desired state arrived during the download)."""
        running = self._loop.shadow
        if running is not None and running.release_id == candidate:
            self._loop.set_shadow(running, self.fraction)
            return None
        self.stop()
        try:
            release = install_with_retries(self._store, candidate, self._superseded,
                                           self._stopping)
            check_agent_version(release)
            self._store.pinned = {candidate}
            runtime = self._warm(release)
        except DownloadCancelled:
            self._store.pinned = set()
            return CANCELLED
        except (AgentError, ProtocolError, OSError) as exc:
            log.error("shadow candidate %s refused: %s", candidate, exc,
                      extra={"release_id": candidate})
            self._store.pinned = set()
            with self._lock:
                self._status = begin(candidate, "unknown", "fail")
            return f"shadow candidate refused: {exc}"
        self._loop.set_shadow(runtime, self.fraction)
        with self._lock:
            self._status = begin(candidate, release.manifest.model_version, "load", "warm")
        log.info("shadowing", extra={"release_id": candidate, "fraction": self.fraction})
        return None

    def stop(self) -> None:
        self._loop.set_shadow(None)
        self._store.pinned = set()
        with self._lock:
            self._status = None

    def pass_window(self, summary: ShadowSummary | None) -> bool:
        """A clean window of compared frames makes a warmed candidate healthy; whether it
        changed."""
        with self._lock:
            shadow = self._status
            if shadow is not None and shadow.stage == "warmed" and summary is not None \
                    and summary.release_id == shadow.release_id \
                    and summary.frames_compared > 0 and summary.errors == 0:
                self._status = advance(shadow, "pass_window")
                return True
        return False
