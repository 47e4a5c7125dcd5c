"""The state machines of training jobs and alerts: states, one table each (docs/architecture.md).

``services.jobs`` and ``services.alerts`` change a state only through ``JOB.next`` and
``ALERT.next``. This module is vocabulary: it imports nothing else of the control plane,
so the API bodies (``schemas``) take their ``Literal`` types from here.
"""

from __future__ import annotations

from typing import Literal

from protocols.states import StateMachine

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobEvent = Literal["start", "report_progress", "succeed", "fail", "cancel"]
AlertState = Literal["open", "acknowledged", "resolved"]
AlertEvent = Literal["acknowledge", "resolve"]

# The trainer reports status and progress (PATCH /api/v1/jobs/{id}); a final job takes
# no more reports: training again is a new job.
JOB = StateMachine[JobStatus, JobEvent]("training job", "queued", {
    "start": (["queued"], "running"),
    "report_progress": (["running"], "running"),
    "succeed": (["running"], "succeeded"),
    "fail": (["queued", "running"], "failed"),
    "cancel": (["queued", "running"], "cancelled"),
})

# An operator acknowledges or resolves an alert; the analysis resolves one whose cause
# went away.
ALERT = StateMachine[AlertState, AlertEvent]("alert", "open", {
    "acknowledge": (["open"], "acknowledged"),
    "resolve": (["open", "acknowledged"], "resolved"),
})

__all__ = ["ALERT", "JOB", "AlertEvent", "AlertState", "JobEvent", "JobStatus"]
