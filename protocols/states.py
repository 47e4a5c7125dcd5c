"""State machines as data: states, named events, and one table of moves.

Every stateful thing in parkwatch (a rollout, a wave, a device in a rollout, a training
job, an alert, a release on an agent) declares its machine with ``StateMachine``: each
event names the states it may start from and the one state it leads to. ``next`` is the
one place a move is decided; it refuses a move the table does not allow with a
``TransitionError`` that names the machine, the event and where the event is allowed.
``mermaid`` draws the machine from the same table (docs/architecture.md).

This module is part of the small dependency-free toolkit that ``protocols`` shares with
every component; it imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

S = TypeVar("S", bound=str)
E = TypeVar("E", bound=str)


class TransitionError(ValueError):
    """A move the machine's table does not allow (a bug in the caller, or a stale row)."""


@dataclass(frozen=True)
class Move(Generic[S]):
    """Where one event may start from, and where it leads."""

    sources: frozenset[S]
    target: S


class StateMachine(Generic[S, E]):
    """A finite state machine given as ``{event: (source states, target state)}``."""

    def __init__(self, name: str, initial: S, moves: Mapping[E, tuple[Iterable[S], S]]) -> None:
        self.name = name
        self.initial = initial
        self.moves: dict[E, Move[S]] = {
            event: Move(frozenset(sources), target) for event, (sources, target) in moves.items()
        }
        states = {initial}
        for move in self.moves.values():
            states |= move.sources | {move.target}
        self.states: frozenset[S] = frozenset(states)

    def allows(self, state: str, event: E) -> bool:
        move = self.moves.get(event)
        return move is not None and state in move.sources

    def next(self, state: str, event: E) -> S:
        """The state ``event`` leads to from ``state``; TransitionError if the table has no
        such move."""
        move = self.moves.get(event)
        if move is None:
            raise TransitionError(f"{self.name}: no event {event!r}")
        if state not in move.sources:
            raise TransitionError(
                f"{self.name}: cannot {event} from {state!r} "
                f"(only from {', '.join(sorted(move.sources))})"
            )
        return move.target

    def event_to(self, state: str, target: str) -> E | None:
        """An event that moves ``state`` to ``target`` (None: the table has no such move)."""
        for event, move in self.moves.items():
            if state in move.sources and move.target == target:
                return event
        return None

    def can_move(self, state: str, target: str) -> bool:
        return self.event_to(state, target) is not None

    def final(self) -> frozenset[S]:
        """States no event leaves."""
        left = set().union(*(m.sources for m in self.moves.values()))
        return frozenset(s for s in self.states if s not in left)

    def edges(self) -> list[tuple[S, E, S]]:
        """Every (state, event, next state) of the table, sorted."""
        return sorted((s, e, m.target) for e, m in self.moves.items() for s in m.sources)

    def mermaid(self) -> str:
        """The machine as a Mermaid ``stateDiagram-v2`` (for docs)."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        lines += [f"    {s} --> {t}: {e}" for s, e, t in self.edges()]
        lines += [f"    {s} --> [*]" for s in sorted(self.final())]
        return "\n".join(lines)


__all__ = ["Move", "StateMachine", "TransitionError"]
