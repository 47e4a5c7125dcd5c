"""Rollouts: a release sent to devices in waves that must pass health gates.

Read in this order:

- ``states``: the three state machines (rollout, wave, device in a rollout), their
  tables, and the one function per machine that makes a move;
- ``service``: the public face (start, act, tick, read) that routes, ingest and the
  retraining worker call; it commits, then publishes desired states;
- ``engine``: ``tick`` and ``record_report``, the state machine persisted in the store;
- ``desired``: the one writer of a device's desired state (locks, revision) and its
  publishing after the commit;
- ``actions``: what people do (start, pause, resume, approve, abort, roll back);
- ``waves`` and ``gates``: wave planning and gate evaluation (pure, no store);
- ``report``: what a device's reported state says about its progress (pure);
- ``reported``: a batch of reported states into device rows, in a few statements;
- ``waiting``: the tick's shortcut while a wave only waits for acknowledgements;
- ``policy``: the policy a rollout follows (fields in ``config/rollout_policy.py``);
- ``runner``: the periodic task that ticks every rollout in progress.
"""
