"""The release worker: desired state -> install -> verify -> smoke test -> swap.

It runs on its own thread and never blocks inference: a new runtime is built
and smoke-tested aside and swapped into the inference loop by reference. It
also installs shadow candidates (the loop mirrors frames to them) and rolls
back a model that fails at run time (raises, or gives NaN/inf on ``rollback_after_errors``
consecutive frames) to the previous verified release: reported as
``active.stage = "rolled_back"`` and a failed ``last_transition`` to the bad
release, plus a ``rolled_back`` event.

It owns the release half of the reported state (desired revision, active,
previous, shadow, last transition); the agent adds the cameras.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from protocols import AgentSettings as DesiredSettings
from protocols import (
    CameraStatus,
    DesiredState,
    ProtocolError,
    ReleaseStatus,
    ReportedState,
    TelemetryWindow,
    Transition,
)

from . import __version__
from .config import AgentSettings
from .errors import (
    AgentError,
    DownloadCancelled,
    ModelError,
)
from .events import EventLog
from .metrics import AgentMetrics
from .pipeline import InferenceLoop
from .release_install import check_agent_version, install_with_retries
from .release_shadow import CANCELLED, ShadowSlot
from .release_states import RELEASE, ReleaseEvent, advance, begin
from .releases import InstalledRelease, ReleaseStore, crash_point, write_atomic
from .runtime import ModelRuntime
from .samples import SampleUploader

log = logging.getLogger(__name__)

def _transition(from_id: str | None, to_id: str | None, reason: str,
                ok: bool = False) -> Transition:
    """A transition for the reported state, stamped now, its reason cut to the wire limit."""
    return Transition(from_release_id=from_id, to_release_id=to_id, ok=ok,
                      reason=reason[:1024], at=datetime.now(UTC))


class ReleaseWorker:
    """Applies desired states and rollbacks on its own thread; ``publish`` sends the state."""

    def __init__(self, settings: AgentSettings, store: ReleaseStore, loop: InferenceLoop,
                 events: EventLog, samples: SampleUploader, metrics: AgentMetrics | None,
                 publish: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.loop = loop
        self.events = events
        self.samples = samples
        self.metrics = metrics
        self._publish_reported = publish
        self._lock = threading.Lock()
        self._active: ReleaseStatus | None = None
        self._previous: str | None = None
        self._transition: Transition | None = None
        self._state_path = settings.data_dir / "agent_state.json"
        # The last desired state handled: (epoch, revision) only grows, across restarts.
        self._epoch, self._revision = self._read_handled()
        self.refused: Counter[str] = Counter()  # desired states refused, by reason
        self._rollback: tuple[str, str] | None = None  # (bad release id, why)
        self._pending: DesiredState | None = None
        self._pending_ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._work, name="releases", daemon=True)
        self.shadow = ShadowSlot(store, loop, self._warm, self._superseded, self._stopping)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop; an install in progress gives up at its next retry."""
        self._stopping.set()
        self._pending_ready.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)

    # -- boot --------------------------------------------------------------------------------
    def boot(self) -> None:
        """Serve the verified, smoke-tested active release, else the previous one."""
        if not self.store.trusted_key_ids:
            log.warning("no trusted public keys configured: no release can be installed")
        pointer = self.store.read_pointer()
        release, reason = self.store.load_active()
        runtime = None
        if release is not None:
            try:
                runtime = self._warm(release)
            except ModelError as exc:
                reason = f"active release {release.release_id} failed its smoke test: {exc}"
                log.error(reason, extra={"release_id": release.release_id})
                previous = pointer.previous if release.release_id == pointer.current else None
                release = None
                if previous is not None:
                    try:
                        release = self.store.load(previous)
                        runtime = self._warm(release)
                        self.store.fall_back_to(previous)
                    except AgentError as exc2:
                        log.error("previous release %s is unusable too: %s", previous, exc2,
                                  extra={"release_id": previous})
                        release = None
        if release is not None and runtime is not None:
            self.loop.swap(runtime)
            self._serve(release, "load", "warm")
            self._previous = self.store.read_pointer().previous
        if reason is not None:
            to_id = release.release_id if release is not None else None
            self._transition = _transition(pointer.current, to_id, reason)
            self.events.emit("rolled_back", release_id=to_id, detail=reason)

    def _warm(self, release: InstalledRelease) -> ModelRuntime:
        runtime = ModelRuntime(release.model_path, release.manifest,
                               self.settings.intra_op_threads)
        runtime.smoke_test()
        return runtime

    # -- desired state -----------------------------------------------------------------------
    def _read_handled(self) -> tuple[int, int | None]:
        """The epoch and revision of the last desired state fully handled before a restart
        (revision None: none yet)."""
        try:
            data = json.loads(self._state_path.read_text())
            revision, epoch = data.get("desired_revision"), data.get("desired_epoch", 0)
        except (OSError, ValueError, AttributeError):
            return 0, None
        epoch = epoch if isinstance(epoch, int) and epoch >= 0 else 0
        return epoch, revision if isinstance(revision, int) and revision >= 0 else None

    def desired_refused(self, reason: str) -> None:
        """Count a desired state refused (here, or by the MQTT link before it got here)."""
        with self._lock:
            self.refused[reason] += 1
        if self.metrics is not None:
            self.metrics.desired_refused.labels(reason).inc()

    def desired_received(self, desired: DesiredState) -> None:
        """Called on paho's thread: hand the newest desired state to the worker.

        States are ordered by (epoch, revision): an older one (a replay) is refused. A
        newer epoch means the control plane's store went back in time (restored from a
        backup): its revisions count from there. A state handled before a restart is not
        applied again (the pointer on disk holds its outcome), except in shadow mode,
        whose candidate lives in memory. A newer state cancels the work for an older one.
        """
        with self._lock:
            if self._pending is not None:
                newest: tuple[int, int] | None = (self._pending.epoch, self._pending.revision)
            elif self._revision is not None:
                newest = (self._epoch, self._revision)
            else:
                newest = None
            got = (desired.epoch, desired.revision)
            resume_shadow = (desired.mode == "shadow" and self._pending is None
                             and got == newest and self.shadow.status is None)
            if newest is not None and got <= newest and not resume_shadow:
                if got == newest:
                    self._apply_settings(desired.settings)
                else:
                    log.warning("refused desired revision %d of epoch %d: not newer than %d "
                                "of epoch %d", desired.revision, desired.epoch, newest[1],
                                newest[0])
                    self.refused["stale"] += 1
                    if self.metrics is not None:
                        self.metrics.desired_refused.labels("stale").inc()
                return
            if desired.epoch != self._epoch:
                log.warning("the control plane's epoch went from %d to %d (its store was "
                            "restored from a backup or replaced): accepting its revisions "
                            "from %d", self._epoch, desired.epoch, desired.revision)
            self._pending = desired
        self._pending_ready.set()

    def _superseded(self) -> bool:
        """Whether a newer desired state waits: the work for the current one stops."""
        with self._lock:
            return self._pending is not None or self._stopping.is_set()

    def _apply_settings(self, settings: DesiredSettings) -> None:
        """Settings the control plane may set, unless the local config set them."""
        local = self.settings.model_fields_set
        if "window_seconds" in settings.model_fields_set and "window_seconds" not in local:
            self.loop.window_seconds = settings.window_seconds
        if "upload_samples" not in local:
            self.samples.enabled = settings.upload_samples
        self.shadow.fraction = settings.shadow_fraction

    def _work(self) -> None:
        while not self._stopping.is_set():
            self._pending_ready.wait()
            self._pending_ready.clear()
            with self._lock:
                desired, self._pending = self._pending, None
                rollback, self._rollback = self._rollback, None
            if self._stopping.is_set():
                break
            try:
                if rollback is not None:
                    self._roll_back(*rollback)
                if desired is not None:
                    self._apply(desired)
            except Exception:  # keep the worker alive whatever happens
                log.exception("the release worker failed")

    def _apply(self, desired: DesiredState) -> None:
        log.info("desired state", extra={"revision": desired.revision, "epoch": desired.epoch,
                                         "release_id": desired.release_id, "mode": desired.mode})
        with self._lock:
            self._epoch = desired.epoch
        self._apply_settings(desired.settings)
        current = self._active_id()
        target, refused, note = desired.release_id, desired.release_id, None
        candidate = None
        if desired.expires_at is not None and desired.expires_at < datetime.now(UTC):
            target, note = current, f"desired revision {desired.revision} expired"
        elif desired.mode == "shadow":  # serve the fallback, mirror the candidate
            target, candidate = desired.fallback_release_id or current, desired.release_id
        error = None
        if target is not None and target != current:
            error = self._activate(target, desired)
            refused = target if error else refused
        if error is None and candidate is not None and candidate != self._active_id():
            error = self.shadow.start(candidate)
            refused = candidate
        elif error is None:
            self.shadow.stop()
        if error == CANCELLED:
            return  # a newer desired state waits; it is handled next
        with self._lock:
            self._revision = desired.revision
            if error or note:
                self._transition = _transition(current, refused, error or note or "")
        if error is not None:
            self.events.emit("activation_failed", release_id=refused, detail=error)
        write_atomic(self._state_path, json.dumps(
            {"desired_revision": desired.revision, "desired_epoch": desired.epoch}).encode())
        self._publish_reported()

    def _activate(self, target: str, desired: DesiredState) -> str | None:
        """Install, load, smoke-test and swap in ``target``; return why it failed, or None
        (``CANCELLED``: a newer desired state arrived during the download)."""
        old, revision = self._active, desired.revision
        try:
            release = install_with_retries(self.store, target, self._superseded, self._stopping)
            crash_point("installed")
            manifest = release.manifest
            check_agent_version(release)
            self._check_not_older(release, desired)
            self._serve(release, revision=revision)
            runtime = ModelRuntime(release.model_path, manifest, self.settings.intra_op_threads)
            self._advance_active("load", revision)
            runtime.smoke_test()
            crash_point("smoke_tested")
            pointer = self.store.activate(target)
            self.loop.swap(runtime)
            crash_point("swapped")
            with self._lock:
                self._previous = pointer.previous
                self._transition = _transition(old.release_id if old else None, target,
                                               "smoke test passed", ok=True)
            self._advance_active("warm", revision)
            self.events.emit("activated", release_id=target,
                             detail=f"model version {manifest.model_version}")
            return None
        except DownloadCancelled:
            log.info("install of %s cancelled: a newer desired state arrived", target,
                     extra={"release_id": target})
            return CANCELLED
        except (AgentError, ProtocolError, OSError) as exc:
            log.error("release %s refused: %s", target, exc, extra={"release_id": target})
            with self._lock:
                self._active = old
                self._revision = revision
            return str(exc)

    def _check_not_older(self, release: InstalledRelease, desired: DesiredState) -> None:
        """Refuse a move to a release older than the one serving unless the signed desired
        state says it is a rollback (a replayed or forged state cannot downgrade)."""
        current = self._active_id()
        if current is None or desired.rollback:
            return
        try:
            serving = self.store.load(current).manifest
        except AgentError:
            return  # the serving release no longer verifies: anything verified is better
        if release.manifest.created_at < serving.created_at:
            self.desired_refused("downgrade")
            raise AgentError(
                f"release {release.release_id} is older than {current}, which serves, and "
                f"desired revision {desired.revision} is not a signed rollback")

    # -- automatic rollback ------------------------------------------------------------------
    def runtime_failed(self, runtime: ModelRuntime, detail: str) -> None:
        """Called on the inference thread: the worker rolls the release back."""
        with self._lock:
            self._rollback = (runtime.release_id, detail)
        self._pending_ready.set()

    def _roll_back(self, bad: str, detail: str) -> None:
        """Serve the previous verified release instead of ``bad`` (or no model at all)."""
        if self._active_id() != bad:
            return  # replaced meanwhile
        pointer = self.store.read_pointer()
        previous = pointer.previous if pointer.current == bad else pointer.current
        release, runtime = None, None
        if previous is not None and previous != bad:
            try:
                release = self.store.load(previous)
                runtime = self._warm(release)
            except AgentError as exc:
                log.error("cannot roll back to %s: %s", previous, exc,
                          extra={"release_id": previous})
                release, runtime = None, None
        to = release.release_id if release is not None else None
        self.store.fall_back_to(to)
        self.loop.swap(runtime)
        reason = f"rolled back to {to or 'no model'}: {detail}"[:1024]
        with self._lock:
            self._previous = None
            self._transition = _transition(to, bad, reason)
            if release is None:
                self._active = None
        if release is not None:
            self._serve(release, "load", "warm", "roll_back_to")
        else:
            self._publish_reported()
        if self.metrics is not None:
            self.metrics.rollbacks.inc()
        self.events.emit("rolled_back", release_id=to, detail=reason)

    # -- reported state ----------------------------------------------------------------------
    def _active_id(self) -> str | None:
        with self._lock:
            return self._active.release_id if self._active else None

    def _serve(self, release: InstalledRelease, *events: ReleaseEvent,
               revision: int | None = None) -> None:
        """``release`` enters the active slot at ``installed``, moved by ``events``."""
        self._set_active(begin(release.release_id, release.manifest.model_version, *events),
                         revision)

    def _advance_active(self, event: ReleaseEvent, revision: int) -> None:
        with self._lock:
            active = self._active
        assert active is not None  # put there by this thread (``_serve``)
        self._set_active(advance(active, event), revision)

    def _set_active(self, status: ReleaseStatus, revision: int | None) -> None:
        with self._lock:
            self._active = status
            if revision is not None:
                self._revision = revision
        self._publish_reported()

    def reported_state(self, cameras: list[CameraStatus]) -> ReportedState:
        shadow = self.shadow.status
        with self._lock:
            return ReportedState(
                device_id=self.settings.device_id,
                agent_version=__version__,
                desired_revision=self._revision,
                # 0 stays off the wire: a control plane older than epochs refuses the field.
                desired_epoch=self._epoch or None,
                active=self._active,
                previous_release_id=self._previous,
                shadow=shadow,
                last_transition=self._transition,
                cameras=cameras,
            )

    def window_closed(self, window: TelemetryWindow) -> None:
        """A clean window from a warmed model (or shadow candidate) makes it healthy."""
        changed = self.shadow.pass_window(window.shadow)
        with self._lock:
            active = self._active
            if active is not None and RELEASE.allows(active.stage, "pass_window") \
                    and window.release_id == active.release_id:
                inferred = sum(c.frames_inferred for c in window.cameras)
                errors = sum(c.errors for c in window.cameras)
                if errors == 0 and (inferred > 0 or not window.cameras):
                    self._active = advance(active, "pass_window")
                    changed = True
        if changed:
            self._publish_reported()
