"""Job mode: report a run's status and progress to the control plane (``PATCH /api/v1/jobs``).

The body is the control plane's JobUpdate: ``status`` (running, succeeded, failed),
``progress`` (0-1, never goes back), ``stage``, ``message`` and, at the end,
``result_version``. The first report (status running) must succeed, so a wrong
job id or token fails the run before any training; later reports that fail are
logged and training goes on (a control plane restart must not waste a run).
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

from .errors import RegistryError, TrainerError
from .registry_client import RegistryClient

log = logging.getLogger(__name__)

# Share of the job's progress at the end of each stage (trainer/stages/__init__.py);
# training fills 0.05 -> 0.75.
STAGE_PROGRESS = {
    "preflight": 0.01, "scan": 0.04, "split": 0.05, "train": 0.75, "export": 0.8,
    "quantize": 0.87, "evaluate": 0.92, "judge": 0.93, "profile": 0.95, "shifts": 0.97,
    "write": 0.98, "register": 1.0,
}


class JobReporter:
    """Reports one job's progress; a no-op when constructed without a job id."""

    def __init__(
        self, api_url: str | None, token: str | None, job_id: str | None,
        min_interval_s: float = 1.0,
    ) -> None:
        self.job_id = job_id
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._started = False
        self._client: RegistryClient | None = None
        if job_id:
            if not api_url:
                raise TrainerError(f"job {job_id}: --job-id needs --api-url to report to")
            self._client = RegistryClient(api_url, token)

    @property
    def active(self) -> bool:
        return self._client is not None

    def _send(self, required: bool = False, **changes: object) -> None:
        if self._client is None or self.job_id is None:
            return
        try:
            self._client.update_job(self.job_id, dict(changes))
            self._last = time.monotonic()
        except RegistryError as exc:
            if required:
                raise
            log.warning("job %s: progress report failed: %s", self.job_id, exc)

    def start(self) -> None:
        self._send(required=True, status="running", progress=0.0, stage="preflight",
                   message="training started")
        self._started = True

    def stage_done(self, stage: str) -> None:
        progress = STAGE_PROGRESS.get(stage)
        self._send(status="running", progress=progress, stage=stage)

    def epoch(self, epoch: int, epochs: int, val_accuracy: float) -> None:
        if time.monotonic() - self._last < self.min_interval_s and epoch < epochs:
            return
        lo, hi = STAGE_PROGRESS["split"], STAGE_PROGRESS["train"]
        self._send(status="running", progress=lo + (hi - lo) * epoch / epochs, stage="train",
                   message=f"epoch {epoch}/{epochs}: val accuracy {val_accuracy:.3f}")

    def succeeded(self, version: str | None, message: str) -> None:
        self._send(status="succeeded", stage="done", message=message[:1024],
                   result_version=version)

    def failed(self, message: str) -> None:
        self._send(status="failed", message=message[:1024])

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> JobReporter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and self.active and self._started:  # else the job was never reached
            self.failed(f"{type(exc).__name__}: {exc}")
        self.close()


__all__ = ["STAGE_PROGRESS", "JobReporter"]
