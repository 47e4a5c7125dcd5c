"""Detection debouncing: one event when a label appears and persists."""

from __future__ import annotations

from edge_agent.events import Debouncer


def feed(debouncer: Debouncer, labels: list[str], confidence: float = 0.9) -> list[str]:
    out = []
    for label in labels:
        fired = debouncer.update(label, confidence)
        if fired:
            out.append(fired)
    return out


def test_one_event_per_appearance() -> None:
    d = Debouncer(persist=3, min_confidence=0.5, ignore={"empty"})
    labels = ["dog"] * 10 + ["empty"] * 5 + ["dog"] * 4
    assert feed(d, labels) == ["dog", "dog"]


def test_flicker_does_not_fire() -> None:
    d = Debouncer(persist=3, min_confidence=0.5)
    assert feed(d, ["dog", "cat", "dog", "cat", "dog", "dog"]) == []


def test_brief_interruption_does_not_refire() -> None:
    d = Debouncer(persist=3, min_confidence=0.5)
    assert feed(d, ["dog"] * 5 + ["cat"] + ["dog"] * 5) == ["dog"]


def test_low_confidence_does_not_fire() -> None:
    d = Debouncer(persist=2, min_confidence=0.8)
    assert feed(d, ["dog"] * 10, confidence=0.7) == []
