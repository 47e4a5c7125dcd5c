"""The second half of `parkwatch demo`: night falls, drift, retraining, shadow, promotion.

Some cameras' looping clips are swapped for night-shifted ones (a rename; the agents
keep running and play the new clip from its next loop). The control plane's drift
analysis opens a drift alert; `parkwatch worker` turns it into a training job on a
dataset that includes night images, compares challenger and champion on held-out day
and night images and starts a rollout whose first phase is shadow mode. The demo
approves the waves after the canary (as an operator would, audited) and, once every
device runs the new release, promotes it to `champion`.

Every wait has a timeout and says, when it runs out, what was expected and which log
file tells why.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from scripts.loop import Loop, wait_until
from scripts.make_video import make_video
from scripts.synth_images import generate_dataset

T = TypeVar("T")
NIGHT_SEVERITY = 0.9
console = Console()


class PhaseError(RuntimeError):
    """A phase did not reach what it waits for; the message names the log to read."""


@dataclass
class Timeline:
    """When each phase began and how long it took: the summary at the end, and
    ``timeline.json`` (``save``) for whoever checks the story against the store."""

    phases: list[tuple[str, float]] = field(default_factory=list)
    started: dict[str, datetime] = field(default_factory=dict)

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        console.rule(f"[bold cyan]{title}")
        start = time.monotonic()
        self.started[title] = datetime.now(UTC)
        try:
            yield
        finally:
            self.phases.append((title, time.monotonic() - start))
            console.print(f"[dim]({time.monotonic() - start:.0f} s)")

    def save(self, path: Path, **facts: Any) -> None:
        path.write_text(json.dumps({
            "phases": [{"title": t, "started_at": self.started[t].isoformat(), "seconds": s}
                       for t, s in self.phases],
            **facts,
        }, indent=2))


def wait_for(
    check: Callable[[], T | None], timeout: float, expected: str, log: Path, status: str
) -> T:
    """Poll ``check`` under a spinner; on timeout raise naming what and where to look."""
    with console.status(status) as spinner:
        try:
            return wait_until(check, timeout, expected, interval=2, on_wait=lambda left: (
                spinner.update(f"{status} [dim](up to {left:.0f} s more)")))
        except TimeoutError as exc:
            raise PhaseError(f"expected {expected}, but it did not happen: {exc}; "
                             f"look at {log}") from None


def story_data(
    workdir: Path, night_cameras: dict[str, list[str]], day: Path
) -> dict[str, Path]:
    """Night images for retraining, a held-out set (day + night) and the night videos."""
    out = {"retrain": workdir / "retrain", "holdout": workdir / "holdout"}
    jobs: list[tuple[str, Callable[[], object]]] = []
    night = workdir / "night-train"
    if not out["retrain"].exists():
        jobs.append(("night training images", lambda: generate_dataset(
            night, n_per_class=150, seed=3, size=128, shift="night", severity=NIGHT_SEVERITY)))
        jobs.append(("retraining set = day + night", lambda: _merge(
            [day, night], out["retrain"])))
    if not out["holdout"].exists():
        jobs.append(("held-out day images", lambda: generate_dataset(
            workdir / "holdout-day", n_per_class=60, seed=7, size=128)))
        jobs.append(("held-out night images", lambda: generate_dataset(
            workdir / "holdout-night", n_per_class=60, seed=8, size=128, shift="night",
            severity=NIGHT_SEVERITY)))
        jobs.append(("held-out set = day + night", lambda: _merge(
            [workdir / "holdout-day", workdir / "holdout-night"], out["holdout"])))
    for i, (device_id, labels) in enumerate(night_cameras.items()):
        video = workdir / "videos" / f"{device_id}-night.avi"
        if not video.exists():
            jobs.append((f"night video {video.name}", partial(
                make_video, video, labels=labels, n_segments=len(labels), seed=20 + i,
                shift="night", severity=NIGHT_SEVERITY)))
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("night data", total=len(jobs))
        for what, job in jobs:
            progress.update(task, description=what)
            job()
            progress.advance(task)
    return out


def _merge(sources: list[Path], dest: Path) -> None:
    """One ImageFolder from several (files prefixed with their source folder's name)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for src in sources:
        for image in src.glob("*/*.jpg"):
            (tmp / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(image, tmp / image.parent.name / f"{src.name}-{image.name}")
    tmp.rename(dest)


def story_config(
    path: Path, data: dict[str, Path], trainer_args: list[str], canary: list[str]
) -> Path:
    """Settings of `serve` and `worker` for a story that fits in minutes: drift analysed
    every 5 s over 2 minutes, 2 of 3 windows drifted open the alert, shadowing devices
    mirror every frame, and the worker
    retrains on day + night images with the same trainer options as the first model.

    The synthetic videos are rendered differently from the training stills (whole
    320x240 scenes, brighter and softer), so even day frames differ from the reference
    profile: brightness PSI about 1.5-2.5 per 40-frame window (measured), sharpness
    and saturation far more. Night puts every frame in the lowest brightness bin: PSI
    3 and more, growing with the frames per window (the demo's agents send 40: 10 s
    windows at 4 fps). The demo therefore watches
    brightness, which is what night changes, with a limit between the two; a real
    site calibrates these limits on its own cameras (docs/drift.md).

    The worker shadows and canaries the challenger on ``canary`` (day cameras, where the
    champion is still right, so agreement means something); the demo then promotes it
    to the night cameras."""
    path.write_text(f"""# written by `parkwatch demo` (see scripts/demo_story.py: story_config)
[rollout_policy]
shadow_fraction = 1.0  # the shadow gates get their frames 4x sooner than at 0.25

[drift]
analysis_interval_s = 5
range_minutes = 2
min_samples = 20
alert_windows = 3
alert_drifted_windows = 2
alert_min_devices = 1
max_accuracy_drop = 0.25
alert_on_skew = true  # the story's alert is still the training comparison (docs/drift.md)

[drift.default_threshold]
min_psi = 50.0  # off: synthetic video vs still-image rendering, not a camera change

[drift.thresholds."input.brightness"]
min_psi = 2.7

[worker]
model_name = "petnet"
dataset_dir = "{data['retrain']}"
holdout_dir = "{data['holdout']}"
poll_interval_s = 3
new_samples = 0
on_accuracy_alert = false
win_margin = 0.02
promotion = "approval"
shadow_devices = {json.dumps(canary)}
trainer_args = {json.dumps(trainer_args)}
""")
    return path


def open_alert(loop: Loop, release_id: str) -> dict[str, Any] | None:
    for alert in loop.api("/alerts", kind="drift", limit=20)["items"]:
        if alert["release_id"] == release_id and alert["state"] != "resolved":
            return dict(alert)
    return None


def night_story(
    loop: Loop, timeline: Timeline, release_id: str, night_cameras: dict[str, list[str]],
    workdir: Path,
) -> str:
    """Night, drift alert, retraining, shadow rollout, promotion; the new release id."""
    logs = loop.workdir / "logs"
    cp_log, worker_log = logs / "control-plane.log", logs / "worker.log"

    with timeline.phase("7/12 night falls on some cameras"):
        for device_id in night_cameras:
            loop.switch_camera(device_id, workdir / "videos" / f"{device_id}-night.avi")
            console.print(f"{device_id}: the camera's clip turns to night (the agent keeps "
                          "running its release)")

    with timeline.phase("8/12 drift analysis opens an alert"):
        alert = wait_for(lambda: open_alert(loop, release_id), 240,
                         f"a drift alert for release {release_id}", cp_log,
                         "waiting for the drift analysis (every 5 s; 2 of 3 windows drifted)")
        console.print(f"[yellow]ALERT[/] #{alert['id']} {alert['severity']}: {alert['message']}")
        for rep in loop.api("/drift", release=release_id, limit=len(night_cameras) + 2)["items"]:
            stats = rep["statistics"]
            features = ", ".join(stats.get("drifted_features") or []) or "none"
            console.print(f"  drift report #{rep['id']} {rep['device_id'] or 'fleet'}: "
                          f"drifted={rep['drifted']} ({rep['sample_count']} frames; features: "
                          f"{features[:100]})")

    with timeline.phase("9/12 the worker retrains on day + night images"):
        job_id = wait_for(lambda: open_alert_job(loop, release_id), 60,
                          "the worker to turn the alert into a training job", worker_log,
                          "waiting for the worker's trigger")
        job = follow_job(loop, job_id, worker_log)
        comparison = job["params"].get("comparison", {})
        console.print(f"[green]job {job_id}[/]: {job['message']}")
        if not comparison.get("rollout_id"):
            raise PhaseError(f"expected the challenger to win and a shadow rollout to start, "
                             f"but: {job['message']}; look at {worker_log} and "
                             f"{loop.cp_dir / 'jobs' / job_id / 'train.log'}")
    rollout_id = str(comparison["rollout_id"])
    new_release = str(comparison["release_id"])

    with timeline.phase(f"10/12 shadow phase and canary on a day camera ({rollout_id})"):
        follow_rollout(loop, rollout_id, cp_log)

    with timeline.phase("11/12 promotion: champion, and the night cameras get it"):
        version = str(comparison["challenger"])
        loop.cli("aliases", "set", "petnet", "champion", version)
        console.print(f"petnet v{version} is now [bold]champion[/]")
        # The champion misclassifies night frames (that is what retraining fixed), so the
        # class mix on the night cameras is meant to change: the operator widens that gate
        # for this rollout (recorded with the rollout's policy in the audit log).
        started = loop.cli_json("rollouts", "start", new_release, "--waves", "100%",
                                "--gate", "max_class_psi=5",
                                *[a for d in night_cameras for a in ("--device", d)])
        console.print(f"rollout {started['rollout_id']} of {new_release} to "
                      f"{', '.join(night_cameras)} (class-shift limit raised to 5: the night "
                      "class mix is expected to change)")
        follow_rollout(loop, str(started["rollout_id"]), cp_log)
        resolved = _wait_resolved(loop, release_id, alert["id"])
        console.print(f"drift alert #{alert['id']}: {resolved}")
    return new_release


def open_alert_job(loop: Loop, release_id: str) -> str | None:
    alert = open_alert(loop, release_id)
    return str(alert["detail"]["job_id"]) if alert and alert["detail"].get("job_id") else None


def follow_job(loop: Loop, job_id: str, log: Path, timeout: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task(f"job {job_id}", total=1.0)
        while time.monotonic() < deadline:
            job: dict[str, Any] = loop.api(f"/jobs/{job_id}")
            progress.update(task, completed=job["progress"] or 0.0, description=(
                f"job {job_id} {job['status']} {job['stage'] or ''}: "
                f"{(job['message'] or '')[:60]}"))
            if job["status"] == "failed":
                raise PhaseError(f"training job {job_id} failed: {job['message']}; look at "
                                 f"{log} and {loop.cp_dir / 'jobs' / job_id / 'train.log'}")
            if job["status"] == "succeeded" and "comparison" in job["params"]:
                return job
            time.sleep(2)
    raise PhaseError(f"expected training job {job_id} to finish within {timeout:.0f} s; "
                     f"look at {log}")


def follow_rollout(loop: Loop, rollout_id: str, log: Path, timeout: float = 600) -> None:
    """Print each wave's gates as they settle; approve once the canary passed."""
    deadline, shown, approved = time.monotonic() + timeout, set[tuple[Any, ...]](), False
    retries = 1
    with console.status(f"rollout {rollout_id}") as spinner:
        while time.monotonic() < deadline:
            ro: dict[str, Any] = loop.api(f"/rollouts/{rollout_id}")
            for wave in ro["waves"]:
                key = (wave["number"], wave["state"],
                       *(f"{g['name']} {g['status']}" for g in wave["gates"]))
                if key not in shown and wave["state"] not in ("planned",):
                    shown.add(key)
                    gates = ", ".join(f"{g['name']} {g['status']}" for g in wave["gates"])
                    console.print(f"wave {wave['number']} ({wave['mode']}, "
                                  f"{wave['device_count']} device(s)): {wave['state']}"
                                  f"{f' [dim]{gates}' if gates else ''}")
            if ro["state"] == "awaiting_approval" and not approved:
                loop.cli("rollouts", "approve", rollout_id, "--reason",
                         "demo: shadow phase and canary passed their gates")
                console.print("[bold]operator approves[/] the waves after the canary "
                              "(`parkwatch rollouts approve`, audited)")
                approved = True
            if ro["state"] == "completed":
                return
            if ro["state"] == "paused" and retries and _latency_only(ro):
                # p95 over a few shadow frames on a shared 2-core machine is noisy: an
                # operator looks, sees the same architecture, and runs the wave again.
                retries -= 1
                loop.cli("rollouts", "resume", rollout_id, "--reason",
                         "demo: latency noise on a shared CPU; run the wave again")
                console.print(f"[yellow]{ro['paused_reason']}[/]\n[bold]operator resumes[/] "
                              "(same architecture, CPU shared with training): the wave runs "
                              "again (`parkwatch rollouts resume`, audited)")
                continue
            if ro["state"] in ("paused", "aborted", "rolled_back", "failed"):
                raise PhaseError(f"rollout {rollout_id} stopped: {ro['state']} "
                                 f"({ro.get('paused_reason')}); see `parkwatch rollouts status "
                                 f"{rollout_id}` and {log}")
            spinner.update(f"rollout {rollout_id}: {ro['state']}, wave {ro['current_wave']}")
            time.sleep(2)
    raise PhaseError(f"expected rollout {rollout_id} to complete within {timeout:.0f} s; see "
                     f"`parkwatch rollouts status {rollout_id}` and {log}")


def _latency_only(rollout: dict[str, Any]) -> bool:
    """Whether the gates that failed are latency gates only."""
    failed = {g["name"] for w in rollout["waves"] for g in w["gates"] if g["status"] == "fail"}
    return failed == {"latency_p95"}


def _wait_resolved(loop: Loop, release_id: str, alert_id: int, timeout: float = 60) -> str:
    """The old release's alert resolves once no device drifts on it any more."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if loop.api(f"/alerts/{alert_id}")["state"] == "resolved":
            return "resolved (no device drifts on the old release any more)"
        time.sleep(3)
    return "still open (it resolves when the analysis sees fewer drifted devices)"
