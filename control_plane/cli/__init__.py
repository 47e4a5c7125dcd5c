"""``parkwatch`` commands of the control plane (merged at the top level of the root CLI).

One module per command group, named after it (``devices`` -> ``cli/devices.py``), most
of them mirroring a resource of ``api/routes``:

- processes: ``serve`` and ``worker`` (``serve.py``);
- local admin, acting on the store or the data folder directly: ``db``, ``keys``,
  ``tokens``, ``mqtt``, ``dead-letters`` (``dead_letters.py``);
- operator commands, talking to the HTTP API through ``client.py`` (each takes
  ``--api-url`` and ``--token``): ``devices``, ``groups``, ``telemetry``, ``models``,
  ``versions``, ``aliases``, ``datasets``, ``releases`` (``release.py``), ``rollouts``
  (``rollout.py``), ``drift``, ``alerts``, ``jobs``, ``samples``, ``audit``.

The vocabulary (docs/control-plane.md): groups are plural nouns, verbs are ``create``,
``list``, ``show``, ``delete`` and the moves of a state machine; old names stay as
hidden, deprecated aliases for one version.

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
    dead_letters,
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
from .common import renamed, with_api_options

# Local admin groups act on the store and the data folder directly; operator groups talk
# to the HTTP API, and each of their commands takes --api-url and --token.
LOCAL_GROUPS = {"db": db, "keys": keys, "tokens": tokens, "mqtt": mqtt,
                "dead-letters": dead_letters}
OPERATOR_GROUPS = {
    "devices": devices, "groups": groups, "models": models, "versions": versions,
    "aliases": aliases, "datasets": datasets, "releases": release, "rollouts": rollout,
    "telemetry": telemetry, "drift": drift, "alerts": alerts, "jobs": jobs,
    "samples": samples, "audit": audit,
}
# Old group names, kept hidden for one version; each use prints a deprecation line.
RENAMED_GROUPS = {"release": "releases", "rollout": "rollouts"}

app = typer.Typer(no_args_is_help=True, help="Control plane: registry, releases, rollouts.")
app.add_typer(serve.app)  # serve and worker: top-level commands
for _name, _group in LOCAL_GROUPS.items():
    app.add_typer(_group.app, name=_name)
for _name, _group in OPERATOR_GROUPS.items():
    for _command in _group.app.registered_commands:
        if _command.callback is not None:
            _command.callback = with_api_options(_command.callback)
    app.add_typer(_group.app, name=_name)
for _old, _new in RENAMED_GROUPS.items():
    app.add_typer(OPERATOR_GROUPS[_new].app, name=_old, hidden=True, deprecated=renamed(_new))

__all__ = ["LOCAL_GROUPS", "OPERATOR_GROUPS", "RENAMED_GROUPS", "app"]
