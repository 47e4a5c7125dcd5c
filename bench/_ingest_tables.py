"""What ``fleet_ingest.py`` measured and its tables: each ingest run, each measurement of
the broker's ceiling between them, the ratio of each run to the ceilings around it and
the median over rounds (``_ceiling_rounds.py``), and where each run's CPU and wall time
went."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from _broker_ceiling import Ceiling, Load  # bench/ is on sys.path: scripts run from it
from _ceiling_rounds import bracketed, by_label, paired, spread, swing

GOAL_RATE = 5_000  # windows/s on PostgreSQL with 2 workers
GOAL_RATIO = 0.7  # of the broker's own ceiling with a trivial subscriber, the same run
KINDS = {"paho": "paho sub", "native": "mosquitto_sub", "alone": "C pub + sub"}


@dataclass(frozen=True)
class Case:
    rate: float  # windows/s stored
    batched: float  # mean windows per transaction
    # CPU seconds per window stored of each process while ingesting (publisher, broker,
    # "worker 1", ..., "PostgreSQL backends" on PostgreSQL), from /proc
    cpu: dict[str, float]
    # Where a worker's time went besides CPU, from its own metrics and the server's views:
    # mean wall time of one write transaction (statements, commit and any lock waits)
    write_ms: float
    waits: dict[str, float]  # share of the database's backends sampled waiting, by event
    hot: dict[str, float]  # share of updates that were HOT, per table (PostgreSQL)

    @property
    def cpu_us(self) -> float:
        """The workers' CPU time per window stored, microseconds."""
        return sum(v for k, v in self.cpu.items() if k.startswith("worker")) * 1e6

    @property
    def backend_us(self) -> float | None:
        """PostgreSQL backends' CPU time per window stored (None: SQLite, whose work is in
        the workers')."""
        backends = self.cpu.get("PostgreSQL backends")
        return None if backends is None else backends * 1e6


@dataclass(frozen=True)
class Run:
    round: int
    name: str  # the configuration: store and workers
    load: Load  # its broker in-flight limit and batch size
    case: Case
    loadavg: float  # the 1-minute load average when it started

    @property
    def label(self) -> str:
        return f"{self.name}, {self.load.inflight} / {self.load.batch_size}"


def ratios(runs: Sequence[Run], ceilings: Sequence[Ceiling], kind: str) -> list[float]:
    """Each run over the mean of the ``kind`` ceilings measured right before and after it."""
    return bracketed([getattr(c, kind) for c in ceilings], [r.case.rate for r in runs])


def cpu_ratios(runs: Sequence[Run], ceilings: Sequence[Ceiling]) -> list[float]:
    """Each run's CPU a window, every process, against the mean of the CPU a message at
    the paho ceilings around it, as ceiling over ingest: what the rate ratio would be if
    both were bound by the same cores. CPU a unit of work moves far less with the
    neighbours than rates do."""
    per_window = bracketed([sum(c.cpu.values()) for c in ceilings],
                           [sum(r.case.cpu.values()) for r in runs])
    return [1 / v for v in per_window]


def print_runs(runs: Sequence[Run], ceilings: Sequence[Ceiling]) -> None:
    each = {kind: ratios(runs, ceilings, kind) for kind in KINDS}
    print("| round | configuration, in-flight / batch | windows/s | devices at 1 window/min | "
          "windows per transaction | worker CPU per window | PostgreSQL backend CPU per "
          "window | paho ceiling before / after | ingest / mean of the two | the same for "
          "mosquitto_sub / C pub + sub | load at start |\n"
          "|---|---|---:|---:|---:|---:|---:|---|---:|---|---:|")
    for i, run in enumerate(runs):
        c = run.case
        backend = "-" if c.backend_us is None else f"{c.backend_us:,.0f} us"
        print(f"| {run.round} | {run.label} | {c.rate:,.0f} | {c.rate * 60:,.0f} | "
              f"{c.batched:.1f} | {c.cpu_us:,.0f} us | {backend} | "
              f"{ceilings[i].paho:,.0f} / {ceilings[i + 1].paho:,.0f} | "
              f"{each['paho'][i]:.2f} | {each['native'][i]:.2f} / {each['alone'][i]:.2f} | "
              f"{run.loadavg:.1f} |")


def print_summary(runs: Sequence[Run], ceilings: Sequence[Ceiling]) -> None:
    """The median over rounds of each configuration, the ceilings' own spread, and each
    configuration's rate against the first one's in the same round."""
    if not runs:
        return
    labels = [r.label for r in runs]
    rates = by_label(labels, [r.case.rate for r in runs])
    each = {kind: by_label(labels, ratios(runs, ceilings, kind)) for kind in KINDS}
    cpu = by_label(labels, cpu_ratios(runs, ceilings))
    print("\n#### Over the rounds: median (lowest-highest)\n\n"
          "| configuration, in-flight / batch | windows/s | ingest / paho ceiling | "
          "/ mosquitto_sub | / C pub + sub | by CPU: the paho ceiling's a message / "
          "ingest's a window |\n|---|---|---|---|---|---|")
    for label, rate in rates.items():
        print(f"| {label} | {rate.median:,.0f} ({rate.low:,.0f}-{rate.high:,.0f}) | "
              f"{each['paho'][label]} | {each['native'][label]} | {each['alone'][label]} | "
              f"{cpu[label]} |")
    print("\nEach run over the mean of the two ceilings measured right before and after "
          "it. The ceilings over the whole run, median (lowest-highest), highest / lowest:")
    for kind, name in KINDS.items():
        values = [getattr(c, kind) for c in ceilings]
        s = spread(values)
        print(f"- {name}: {s.median:,.0f} ({s.low:,.0f}-{s.high:,.0f}) messages/s, "
              f"{swing(values):.2f}x")
    base = runs[0].load
    for name in dict.fromkeys(r.name for r in runs):
        mine = [r for r in runs if r.name == name]
        pairs = paired([r.label for r in mine], [r.case.rate for r in mine], mine[0].label)
        for label, s in pairs.items():
            print(f"- {label} over {base.inflight} / {base.batch_size}, windows/s in the "
                  f"same round: {s}")
    for label, s in each["paho"].items():
        if label.startswith("PostgreSQL, 2 workers"):
            verdict = "met" if s.median >= GOAL_RATIO else "not met"
            print(f"- goal, {label}: {GOAL_RATIO} of the paho ceiling: median {s.median:.2f}, "
                  f"{verdict}")


def print_ceilings(ceilings: Sequence[Ceiling], inflight: int) -> None:
    """Each measurement of the ceiling and what a message cost each process in it: a
    ceiling that moves with the publisher's cost a message is the publisher's."""
    print(f"\n#### The broker's ceilings, in the order measured (in-flight limit {inflight})"
          "\n\n| # | paho sub / mosquitto_sub / C pub + sub (messages/s) | CPU a message at "
          "the paho ceiling: publisher / broker / subscriber | load at start |\n"
          "|---:|---|---|---:|")
    for i, c in enumerate(ceilings):
        us = {k: v * 1e6 for k, v in c.cpu.items()}
        print(f"| {i} | {c.paho:,.0f} / {c.native:,.0f} / {c.alone:,.0f} | "
              f"{us['publisher']:,.0f} / {us['broker']:,.0f} / {us['subscriber']:,.0f} us | "
              f"{c.load:.1f} |")


def print_cpu(runs: Sequence[Run]) -> None:
    """Where a window's CPU went, every process of the run, and the cores that makes at
    the goal's rate: what the rate can be on a machine with that many cores to spare."""
    print("\n#### CPU per window stored, by process (/proc, while ingesting)\n\n"
          "| round | configuration, in-flight / batch | publisher | broker | workers | "
          f"PostgreSQL backends | all | cores at {GOAL_RATE:,} windows/s |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        us = {k: v * 1e6 for k, v in run.case.cpu.items()}
        workers = " + ".join(f"{v:,.0f}" for k, v in us.items() if k.startswith("worker"))
        backends = us.get("PostgreSQL backends")
        total = sum(us.values())
        print(f"| {run.round} | {run.label} | {us['publisher']:,.0f} us | "
              f"{us['broker']:,.0f} us | {workers} us | "
              f"{'-' if backends is None else f'{backends:,.0f} us'} | {total:,.0f} us | "
              f"{total * GOAL_RATE / 1e6:.2f} |")
    print("\nPostgreSQL's shared processes (WAL writer, checkpointer) serve every database "
          "on the server and are not counted; /proc counts in 10 ms ticks.")


def print_waits(runs: Sequence[Run]) -> None:
    """Where the workers' time went besides CPU: a rate below what the CPU allows is
    latency (the commit's WAL flush, row locks another worker holds until its commit)."""
    print("\n#### Besides CPU: a write transaction's wall time, what the backends waited on\n\n"
          "| round | configuration, in-flight / batch | write transaction (wall, mean) | its "
          "windows' CPU (workers' and backends' per window x windows per transaction) | "
          "active backends' samples: running / waiting, by event type | HOT updates: "
          "telemetry_rollup / device |\n|---|---|---:|---:|---|---|")
    for run in runs:
        c = run.case
        cpu_ms = (c.cpu_us + (c.backend_us or 0.0)) * c.batched / 1e3
        waits = ", ".join(f"{k} {v:.0%}" for k, v in c.waits.items()) or "-"
        hot = " / ".join(f"{c.hot[t]:.0%}" if t in c.hot else "-"
                         for t in ("telemetry_rollup", "device")) if c.hot else "-"
        print(f"| {run.round} | {run.label} | {c.write_ms:.1f} ms | {cpu_ms:.1f} ms | "
              f"{waits} | {hot} |")
    print("\nA HOT update adds no index entries; PostgreSQL makes one only where the page has "
          "room, which pruning makes only when no transaction anywhere on the server is older "
          "than the dead row versions (autovacuum is off on this machine's server).")
