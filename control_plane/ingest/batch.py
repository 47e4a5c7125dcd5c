"""Batched, acknowledged MQTT ingest: one ordered pipeline from paho's callback to the store.

paho's network thread decodes and validates each message and queues it (``submit``); one
writer thread takes up to ``batch_size`` queued messages (waiting at most ``linger_s`` for
the batch to fill), writes each run of consecutive telemetry windows, and each run of
consecutive device messages (status, reported state, events), in one transaction, hands
any other message to its handler one by one, and only then acknowledges them, in the
order they arrived (MQTT 3.1.1 section 4.6). A message acknowledged is committed.

A transient store error (sqlalchemy ``OperationalError``: SQLite busy, PostgreSQL down,
deadlock) is retried with backoff for as long as it lasts. Nothing is acknowledged
meanwhile, so the broker stops sending once this client's in-flight window is full: that
is the back-pressure. Any other error in a run writes its windows (or device messages)
again one by one, so one bad message cannot take the others with it; a message that still
fails alone would fail the same way on every redelivery, so it is written to the dead-letter
table (``dead_letter``: its own transaction, retried like any write), logged, counted as
``dead_letter`` and only then acknowledged; an operator replays it once the cause is fixed.
Only if that write fails too is the message counted as ``error`` and lost.
A message that came on a connection since lost is still written but not acknowledged (its
packet id may name another message now); the broker resends it and it counts as a
duplicate.

Batch size and the broker's in-flight limit: the broker sends at most
``max_inflight_messages`` unacknowledged QoS 1 messages per client (Mosquitto's default
is 20), so a batch seldom holds more than that. A ``batch_size`` above the broker's limit
only makes the writer wait out ``linger_s`` for messages that cannot come; raise both
together (``max_inflight_messages 100`` in mosquitto.conf with ``ingest_batch_size = 100``).

The broker's limit is not a bound on memory, though: Mosquitto 2.0.11 releases up to its
in-flight limit of queued messages for each PUBACK it gets (MQTT 3.1.1 and 5's
``receive_maximum`` alike; docs/performance.md, "Memory over time"), so while the writer
lags the queue grew to tens of thousands of messages. ``max_queued`` is the bound: once
that many messages are held unacknowledged, ``submit`` blocks paho's network thread, which
then stops reading the socket, and the backlog stays with the broker. (Should the store
then stall for longer than 1.5 keepalives, the broker drops the silent connection and
resends what was unacknowledged after the reconnect: copies, which ingest stores once.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from protocols import TelemetryWindow
from protocols.logs import bind_context

from ..metrics import (
    INGEST_BATCH_WINDOWS,
    INGEST_QUEUE_DEPTH,
    INGEST_RESULTS,
    INGEST_STORE_DOWN,
    INGEST_STORE_RETRIES,
    INGEST_WRITE_SECONDS,
    MQTT_MESSAGES,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
INGESTED_KINDS = frozenset({"telemetry", "events"})  # counted in parkwatch_cp_ingest_total
DEVICE_KINDS = frozenset({"status", "reported", "events"})  # written together, a run at once
MAX_BACKOFF_S = 5.0

WriteWindows = Callable[[Sequence[TelemetryWindow]], Counter[str]]
# A run of device messages -> how many had each (kind, outcome)
WriteDevice = Callable[[Sequence[Any]], Counter[tuple[str, str]]]
HandleMessage = Callable[[str, Any], str]
# PUBACK committed messages, in arrival order
Acknowledge = Callable[[Sequence["Inbound"]], None]
# Keep a message that failed alone, with the error's one line (a dead letter)
KeepFailed = Callable[["Inbound", str], None]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A received message in arrival order; ``message`` None: already counted (invalid or
    ignored), only to be acknowledged in its turn."""

    kind: str
    device_id: str
    message: Any
    mid: int
    qos: int
    connection: int  # the broker connection it came on: a PUBACK only goes back on that one
    received: float = field(default_factory=time.time)  # epoch seconds, for a dead letter


class _Abandoned(Exception):
    """The pipeline is stopping while the store is down: leave the rest unacknowledged."""


def is_transient(exc: BaseException) -> bool:
    """A store error that passes (busy, restart, deadlock), not one that a message causes."""
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def one_line(exc: BaseException) -> str:
    """An error as one line: its type and the first line of its text."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:1000]


def count(kind: str, outcome: str, n: int = 1) -> None:
    MQTT_MESSAGES.labels(kind, outcome).inc(n)
    if kind in INGESTED_KINDS:
        INGEST_RESULTS.labels(kind, outcome).inc(n)


class IngestPipeline:
    """The queue and the writer thread between paho's callback and the store."""

    def __init__(
        self,
        write_windows: WriteWindows,
        handle: HandleMessage,
        acknowledge: Acknowledge,
        *,
        batch_size: int = 20,
        linger_s: float = 0.02,
        max_queued: int = 1000,
        write_device: WriteDevice | None = None,
        keep_failed: KeepFailed | None = None,
    ) -> None:
        if batch_size < 1 or linger_s < 0 or max_queued < batch_size:
            raise ValueError("batch_size must be >= 1, linger_s >= 0 and max_queued >= "
                             "batch_size")
        self._write_windows = write_windows
        self._write_device = write_device
        self._keep_failed = keep_failed
        self._handle = handle
        self._acknowledge = acknowledge
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.max_queued = max_queued
        self._queue: deque[Inbound] = deque()
        self._closing = threading.Event()  # no new messages; drain what is queued
        self._intake = threading.Lock()  # a message is either queued before stop or dropped
        self._room = threading.Condition(self._intake)  # signalled as messages are let go
        # Signalled when the writer has something to do: a first message, a full batch, or
        # stop. Not at every message: waking the writer once per message (to take it and
        # wait for the next) cost more CPU than the rest of the hand-off.
        self._ready = threading.Condition(self._intake)
        self.held = 0  # received, not yet acknowledged or given up: at most max_queued
        self._abandon = threading.Event()  # give up on a store that stays down
        self._thread: threading.Thread | None = None
        self._store_down = False

    # -- paho's thread ---------------------------------------------------------------------
    def submit(self, item: Inbound) -> None:
        """Queue a message; after ``stop`` it is dropped unacknowledged (the broker keeps it).
        While ``max_queued`` are held, wait for room (a running writer makes it): paho's
        thread then reads nothing more, so the broker keeps the backlog, not this process."""
        with self._room:
            while self.held >= self.max_queued and self._writing():
                if self._closing.is_set():
                    break
                self._room.wait(0.5)
            if self._closing.is_set():
                return
            self.held += 1
            INGEST_QUEUE_DEPTH.inc()
            self._queue.append(item)
            if len(self._queue) in (1, self.batch_size):
                self._ready.notify()

    def _writing(self) -> bool:
        """A writer thread runs that will make room (``drain`` callers make their own)."""
        return self._thread is not None and self._thread.is_alive()

    def _release(self, n: int) -> None:
        """``n`` held messages acknowledged or given up: room for as many new ones."""
        if n:
            INGEST_QUEUE_DEPTH.dec(n)
            with self._room:
                self.held -= n
                self._room.notify_all()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-ingest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Write and acknowledge what is queued, for at most ``timeout`` seconds; give up at
        once while the store is down. True when everything queued was acknowledged."""
        with self._room:
            self._closing.set()
            self._room.notify_all()  # a submit waiting for room gives up
            self._ready.notify_all()  # a writer lingering for a full batch takes what is there
        if self._store_down:  # nothing to flush into: leave it all to the broker
            self._abandon.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # a slow store: the writer drops what it holds
                self._abandon.set()
                self._thread.join(MAX_BACKOFF_S)
        with self._intake:  # what the writer did not get to stays unacknowledged: the broker
            left = len(self._queue)  # resends it
            self._queue.clear()
        self._release(left)
        if left or self._abandon.is_set():
            log.warning("ingest stopped with messages unacknowledged; the broker resends them",
                        extra={"queued": left})
        self._set_store_down(False)
        return not (left or self._abandon.is_set())

    def drain(self) -> None:
        """Write everything queued now, in the calling thread (for a pipeline not started)."""
        while batch := self._take(wait=False):
            self._write(batch)

    # -- the writer ------------------------------------------------------------------------
    def _run(self) -> None:
        while not (self._closing.is_set() and not self._queue):
            batch = self._take(wait=True)
            if batch and not self._write(batch):
                self._abandon.set()
                return
            if self._abandon.is_set():
                return

    def _take(self, *, wait: bool) -> list[Inbound]:
        """Up to ``batch_size`` queued messages: waits for the first (up to 0.2 s, so that
        ``stop`` is seen), then at most ``linger_s`` for the batch to fill."""
        with self._ready:
            if wait and not self._queue and not self._closing.is_set():
                self._ready.wait(0.2)
            if not self._queue:
                return []
            deadline = time.monotonic() + (self.linger_s if wait else 0.0)
            while len(self._queue) < self.batch_size and not self._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            n = min(len(self._queue), self.batch_size)
            return [self._queue.popleft() for _ in range(n)]

    def _write(self, batch: list[Inbound]) -> bool:
        """Write the batch in order, acknowledging each part once it is committed; False
        when the pipeline gave up on a store that is down (the rest stays unacknowledged)."""
        i = 0
        while i < len(batch):
            j = i + 1
            run = self._run_kind(batch[i])
            if run is not None:
                while j < len(batch) and self._run_kind(batch[j]) == run:
                    j += 1
            started = time.perf_counter()
            try:
                if run is not None:
                    self._store_run(run, batch[i:j])
                elif batch[i].message is not None:
                    self._store_one(batch[i])
            except _Abandoned:
                self._release(len(batch) - i)
                return False
            INGEST_WRITE_SECONDS.observe(time.perf_counter() - started)
            self._acknowledge(batch[i:j])
            self._release(j - i)
            i = j
        return True

    def _run_kind(self, item: Inbound) -> str | None:
        """Which run a message is written in (None: one by one, or nothing to write)."""
        if item.message is None:
            return None
        if item.kind == "telemetry":
            return "telemetry"
        if self._write_device is not None and item.kind in DEVICE_KINDS:
            return "device"
        return None

    def _write_run(self, run: str, messages: Sequence[Any]) -> Counter[tuple[str, str]]:
        if run == "device":
            assert self._write_device is not None
            return self._write_device(messages)
        return Counter({("telemetry", outcome): n
                        for outcome, n in self._write_windows(messages).items()})

    def _store_run(self, run: str, items: list[Inbound]) -> None:
        if run == "telemetry":
            INGEST_BATCH_WINDOWS.observe(len(items))
        try:
            outcomes = self._retrying(lambda: self._write_run(run, [i.message for i in items]))
        except _Abandoned:
            raise
        except Exception:
            log.exception("batch of %s messages failed; writing them one by one", run,
                          extra={"count": len(items)})
            outcomes = Counter()
            for item in items:
                try:
                    outcomes.update(self._retrying(partial(self._write_run, run, [item.message])))
                except _Abandoned:
                    raise
                except Exception as exc:
                    outcomes[item.kind, self._failed(item, exc)] += 1
        for (kind, outcome), n in outcomes.items():
            count(kind, outcome, n)

    def _store_one(self, item: Inbound) -> None:
        with bind_context(device_id=item.device_id):
            try:
                outcome = self._retrying(lambda: self._handle(item.kind, item.message))
            except _Abandoned:
                raise
            except Exception as exc:
                outcome = self._failed(item, exc)
        count(item.kind, outcome)

    def _failed(self, item: Inbound, exc: Exception) -> str:
        """The outcome of a message that failed alone: ``dead_letter`` once it is kept
        (before it is acknowledged), ``error`` when it could not be kept either."""
        error = one_line(exc)
        where = {"kind": item.kind, "device_id": item.device_id,
                 "seq": getattr(item.message, "seq", None)}
        if self._keep_failed is not None:
            try:
                self._retrying(partial(self._keep_failed, item, error))
            except _Abandoned:
                raise
            except Exception:
                log.exception("%s message failed (%s) and could not be kept as a dead "
                              "letter: it is lost", item.kind, error, extra=where)
                return "error"
            log.error("%s message failed; kept as a dead letter (parkwatch dead-letters "
                      "replay): %s", item.kind, error, exc_info=exc, extra=where)
            return "dead_letter"
        log.error("%s message failed", item.kind, exc_info=exc, extra=where)
        return "error"

    def _retrying(self, write: Callable[[], T]) -> T:
        """Run ``write`` until it gets past transient store errors (writes are idempotent, so
        a retry never stores twice); raise _Abandoned when stopping meanwhile."""
        attempt = 0
        while True:
            try:
                result = write()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                attempt += 1
                INGEST_STORE_RETRIES.inc()
                self._set_store_down(True)
                if attempt == 1 or attempt % 20 == 0:
                    log.warning("store unavailable, retrying; nothing is acknowledged meanwhile "
                                "(%s)", one_line(exc)[:200],
                                extra={"attempt": attempt})
                if self._closing.is_set() or self._abandon.wait(
                    min(0.05 * 2 ** (attempt - 1), MAX_BACKOFF_S)
                ):
                    raise _Abandoned from exc
                continue
            if attempt:
                log.info("store available again", extra={"attempts": attempt})
                self._set_store_down(False)
            return result

    def _set_store_down(self, down: bool) -> None:
        if down != self._store_down:
            self._store_down = down
            INGEST_STORE_DOWN.inc(1 if down else -1)
