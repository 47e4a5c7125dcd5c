"""Continuous training: what ``parkwatch worker`` does each round.

- ``triggers``: drift and accuracy alerts, new labelled samples and a schedule -> jobs;
- ``jobs``: run one job: dataset version, trainer subprocess, champion vs challenger on
  held-out data, and for a winner a signed release and a shadow rollout;
- ``evaluation``: accuracy of a registered model on labelled images (ONNX Runtime).

The training job's states are in ``services/states.py``; the process is
``processes/worker.py``.
"""
