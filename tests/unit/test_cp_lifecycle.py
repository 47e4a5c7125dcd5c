"""Long-running parts: periodic tasks, start/stop order, and the signal entry point."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from control_plane.lifecycle import Health, PeriodicTask, Services, run_until_signalled

ROOT = Path(__file__).resolve().parents[2]


def test_a_failing_run_is_retried_and_shown_by_health() -> None:
    outcomes = iter([ValueError("store down"), None, None])
    two_ok = threading.Event()

    def run() -> None:
        outcome = next(outcomes, None)
        if outcome is not None:
            raise outcome
        if task.runs == 1:
            two_ok.set()

    task = PeriodicTask("t", 0.01, run, run_at_start=True)
    assert task.health() == Health(True, "no run yet (every 0.01 s)")
    assert task.run_once() is False
    assert task.health() == Health(False, "last run failed: ValueError: store down")
    task.start()
    try:
        assert two_ok.wait(10)
        assert task.health().ok and task.health().detail.startswith("last run")
    finally:
        task.stop()
    assert task.health() == Health(False, "stopped")


def test_run_until_ticks_on_the_callers_thread_until_stopped() -> None:
    stop = threading.Event()
    threads: list[str] = []

    def run() -> None:
        threads.append(threading.current_thread().name)
        if len(threads) == 3:
            stop.set()

    PeriodicTask("t", 0.01, run, run_at_start=True).run_until(stop)
    assert threads == [threading.current_thread().name] * 3


class Part:
    def __init__(self, name: str, log: list[str], fail_stop: bool = False) -> None:
        self.name, self.log, self.fail_stop = name, log, fail_stop

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError("stuck")

    def health(self) -> Health:
        return Health(True, self.name)


def test_services_stop_in_reverse_even_when_one_fails() -> None:
    log: list[str] = []
    services = Services()
    for name, fails in (("broker", False), ("mqtt", True), ("engine", False)):
        services.start(Part(name, log, fails))
    assert list(services.health()) == ["broker", "mqtt", "engine"]
    services.stop()
    assert log == ["start broker", "start mqtt", "start engine",
                   "stop engine", "stop mqtt", "stop broker"]
    assert services.health() == {}


def test_sigterm_ends_the_wait_and_restores_the_handlers() -> None:
    """In a fresh interpreter: the process waits, SIGTERM ends the wait, the old handler is
    back afterwards."""
    code = textwrap.dedent("""
        import signal, threading, time
        from control_plane.lifecycle import run_until_signalled
        before = signal.getsignal(signal.SIGTERM)
        def tell_when_waiting():
            while signal.getsignal(signal.SIGTERM) is before:
                time.sleep(0.01)
            print("waiting", flush=True)
        threading.Thread(target=tell_when_waiting, daemon=True).start()
        run_until_signalled("test process")
        print("stopped", signal.getsignal(signal.SIGTERM) is before, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert out.strip() == "stopped True"


def test_off_the_main_thread_only_the_event_stops_it() -> None:
    stop = threading.Event()
    worker = threading.Thread(target=run_until_signalled, args=("t", stop))
    worker.start()
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
