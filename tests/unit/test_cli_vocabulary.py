"""One vocabulary for the control plane's CLI: plural groups, one set of verbs, --api-url and
--token on every operator command, old names hidden and deprecated for one version."""

from __future__ import annotations

from typing import Any

import typer

from control_plane.cli import LOCAL_GROUPS, OPERATOR_GROUPS, RENAMED_GROUPS
from parkwatch_cli import app

# Areas rather than collections keep their singular name (docs/control-plane.md).
AREAS = {"db", "mqtt", "telemetry", "drift", "audit"}
RENAMED_COMMANDS = {("devices", "add"): "create", ("aliases", "remove"): "delete",
                    ("alerts", "ack"): "acknowledge"}


def _root() -> Any:
    """The root command as click sees it (typer bundles its own click)."""
    return typer.main.get_command(app)


def _group(name: str) -> Any:
    group = _root().commands[name]
    assert hasattr(group, "commands"), f"{name} is not a group"
    return group


def test_groups_are_plural_nouns_or_named_areas() -> None:
    for name in [*LOCAL_GROUPS, *OPERATOR_GROUPS]:
        assert name.endswith("s") or name in AREAS, name
        assert not _root().commands[name].hidden


def test_old_group_names_are_hidden_deprecated_aliases() -> None:
    for old, new in RENAMED_GROUPS.items():
        alias, current = _group(old), _group(new)
        assert alias.hidden and alias.deprecated and not current.hidden
        assert f"parkwatch {new}" in str(alias.deprecated)
        assert set(alias.commands) == set(current.commands)


def test_renamed_commands_keep_their_old_name_hidden_and_deprecated() -> None:
    for (group, old), new in RENAMED_COMMANDS.items():
        commands = _group(group).commands
        assert commands[old].hidden and commands[old].deprecated
        assert f"parkwatch {group} {new}" in str(commands[old].deprecated)
        assert not commands[new].hidden


def test_every_operator_command_takes_api_url_and_token() -> None:
    for name in OPERATOR_GROUPS:
        for command in _group(name).commands.values():
            options = {opt for p in command.params for opt in getattr(p, "opts", [])}
            assert {"--api-url", "--token"} <= options, f"{name} {command.name}"


def test_local_admin_commands_do_not_pretend_to_talk_to_the_api() -> None:
    for name in LOCAL_GROUPS:
        for command in _group(name).commands.values():
            options = {opt for p in command.params for opt in getattr(p, "opts", [])}
            assert "--api-url" not in options, f"{name} {command.name}"
