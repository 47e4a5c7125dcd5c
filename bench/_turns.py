"""Variants that take turns: each runs for a short block, in rotating order, so neighbours
on a shared machine slow them alike; wall-clock frames and process CPU time per turn.

A turn lasts ``turn_s`` seconds, or, where the inputs differ in cost (a regions frame
with no crop costs the bare model nothing), exactly ``frames_per_turn`` frames, the
same ones for every variant: a timed turn would run through the cheap frames and
count them, and flatter that variant.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Step = Callable[[int], object]


def run_block(step: Step, start: int, seconds: float, n_inputs: int, times: list[float],
              frames: int | None = None) -> tuple[int, float, float]:
    """Run ``step`` for at least ``seconds`` (or on exactly ``frames`` inputs from
    ``start``), appending each frame's time; (frames, seconds, process CPU seconds:
    every thread of this process, ORT's pool included)."""
    clock = time.perf_counter
    cpu = time.process_time()
    began = last = clock()
    i = start
    while i - start < frames if frames else last - began < seconds:
        step(i % n_inputs)
        i += 1
        now = clock()
        times.append(now - last)
        last = now
    return i - start, last - began, time.process_time() - cpu


@dataclass
class Turns:
    """What one variant did in each of its turns."""

    frames: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # of every frame

    def fps(self, turns: slice = slice(None)) -> float:
        """Frames/s over the turns: every frame's work, the summary's batches included."""
        return sum(self.frames[turns]) / sum(self.seconds[turns])

    def cpu_ms(self) -> float:
        """Process CPU milliseconds per frame over all turns: the work of every thread,
        without the time spent waiting for a core."""
        return sum(self.cpu) / sum(self.frames) * 1000.0

    def turn_fps(self) -> list[float]:
        return [f / s for f, s in zip(self.frames, self.seconds, strict=True)]


def interleaved(variants: dict[str, Step], turns: int, turn_s: float, n_inputs: int,
                frames_per_turn: int | None = None,
                after_lead: Callable[[], None] | None = None) -> dict[str, Turns]:
    """Each variant's turns, taken in rotating order: timed turns from spread-out inputs,
    or ``frames_per_turn`` consecutive inputs, the same for every variant in a turn. With
    ``after_lead`` the first variant leads every turn, then ``after_lead`` runs untimed
    and the others follow in rotating order (they may replay what the lead did)."""
    names = list(variants)
    done = {k: Turns() for k in names}
    for t in range(-1, turns):  # turn -1 warms up (first-run allocations, caches)
        order = names[t % len(names):] + names[:t % len(names)]
        if after_lead is not None:
            order = [names[0], *(n for n in order if n != names[0])]
        frames: int | None
        if t < 0:
            start, frames = n_inputs - 3, 3
        else:
            start = t * frames_per_turn if frames_per_turn else t * 7
            frames = frames_per_turn
        for name in order:
            ran, secs, cpu = run_block(variants[name], start, turn_s, n_inputs,
                                       done[name].times, frames)
            if name == names[0] and after_lead is not None:
                after_lead()
            if t < 0:
                done[name].times.clear()
                continue
            done[name].frames.append(ran)
            done[name].seconds.append(secs)
            done[name].cpu.append(cpu)
    return done
