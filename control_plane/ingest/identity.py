"""Stable MQTT client ids for ingest workers, and the end of a retired worker's session.

An ingest worker keeps a persistent session in a shared subscription, so the broker goes
on handing it its share of the fleet's telemetry while it is stopped, and delivers that
share when the same client id connects again. A worker therefore claims a *slot* on
start: the lowest free number in ``<data_dir>/ingest-slots`` (a ``flock`` held for the
process's life, released by the kernel even on SIGKILL), and its client id is
``<base>-<slot>``. A restarted worker takes a free slot, normally its old one, and gets
what was queued for it. A worker removed for good leaves a session that still takes a
share: ``retire_idle_sessions`` (``parkwatch serve --role ingest --retire``) connects as
each slot no running worker holds, stops its share (UNSUBSCRIBE), stores what the broker
had queued for it, and ends the session. docs/operations.md, "Scaling ingest workers".
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)
MAX_SLOTS = 64


@dataclass
class Slot:
    """A claimed slot: its number and the locked file that holds it."""

    number: int
    client_id: str
    _file: IO[bytes]

    def release(self) -> None:
        self._file.close()  # closing drops the flock


def base_client_id(prefix: str, data_dir: Path) -> str:
    """``<prefix>-ingest-<host>-<folder hash>``: workers of one host and data folder share
    the slots; another folder on the same host gets other ids."""
    folder = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:6]
    return f"{prefix}-ingest-{socket.gethostname()[:32]}-{folder}"


def _try_lock(path: Path) -> IO[bytes] | None:
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n".encode())
    handle.flush()
    return handle


def claim_slot(base: str, folder: Path) -> Slot:
    """The lowest slot no running worker holds (raises OSError when all are taken)."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(MAX_SLOTS):
        handle = _try_lock(folder / f"{number}.lock")
        if handle is not None:
            return Slot(number, f"{base}-{number}", handle)
    raise OSError(f"all {MAX_SLOTS} ingest slots in {folder} are held by running workers")


def idle_slots(base: str, folder: Path) -> list[Slot]:
    """Every slot that was used once (its lock file exists) and that no worker holds now."""
    slots = []
    numbers = sorted(int(p.stem) for p in folder.glob("*.lock") if p.stem.isdigit())
    for number in numbers:
        handle = _try_lock(folder / f"{number}.lock")
        if handle is not None:
            slots.append(Slot(number, f"{base}-{number}", handle))
    return slots


def wait_quiet(last_activity: Callable[[], float], quiet_s: float, timeout_s: float) -> bool:
    """Wait until nothing happened for ``quiet_s`` (monotonic seconds); False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if time.monotonic() - last_activity() >= quiet_s:
            return True
        time.sleep(min(0.1, quiet_s))
    return False


__all__ = ["Slot", "base_client_id", "claim_slot", "idle_slots", "wait_quiet"]
