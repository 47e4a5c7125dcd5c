"""Regions mode: what the agent looks at in a wide park shot (docs/agent.md, "Regions").

A frame goes small (in colour) -> a background model marks what moves -> boxes, merged
and kept within a size range -> with the boxes of resting animals' tracks, square crops with
context -> one batched model run -> each crop an animal or not -> tracks -> window counts
and per-track events.

``boxes``, ``tracker``, ``condition`` and ``stats`` are pure logic (no I/O, no OpenCV):
unit-tested on their own. ``proposals`` and ``crops`` hold the OpenCV work, with every
buffer kept between frames; ``analyzer`` ties one camera's steps together.
"""
