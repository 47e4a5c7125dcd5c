"""``parkwatch`` commands of the control plane (merged at the top level of the root CLI).

One module per command group, named after it (``rollout`` -> ``cli/rollout.py``), most
of them mirroring a resource of ``api/routes``:

- processes: ``serve`` and ``worker`` (``serve.py``);
- local admin, acting on the store or the data folder directly: ``db``, ``keys``,
  ``tokens``, ``mqtt``;
- operator commands, talking to the HTTP API through ``client.py``: ``devices``,
  ``groups``, ``telemetry``, ``models``, ``versions``, ``aliases``, ``datasets``,
  ``release``, ``rollout``, ``drift``, ``alerts``, ``jobs``, ``samples``, ``audit``.

``common.py`` holds the shared options and ``fails_cleanly`` (a ``ControlPlaneError`` is
one line on stderr and exit 1). Heavy imports (fastapi, sqlmodel, httpx) happen inside
the commands, so ``parkwatch --help`` stays fast.
"""

from __future__ import annotations

import typer

from . import (
    alerts,
    aliases,
    audit,
    datasets,
    db,
    devices,
    drift,
    groups,
    jobs,
    keys,
    models,
    mqtt,
    release,
    rollout,
    samples,
    serve,
    telemetry,
    tokens,
    versions,
)

app = typer.Typer(no_args_is_help=True, help="Control plane: registry, releases, rollouts.")
app.add_typer(serve.app)  # serve and worker: top-level commands
for _group in (db, keys, tokens, devices, models, release, rollout, telemetry, versions,
               aliases, datasets, groups, alerts, drift, jobs, audit, samples, mqtt):
    app.add_typer(_group.app, name=_group.__name__.rsplit(".", 1)[1])

__all__ = ["app"]
