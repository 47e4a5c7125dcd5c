"""The control plane's side of the shared settings toolkit (``protocols.settings``).

The file is given with ``--config`` or ``PARKWATCH_CONFIG``; the environment wins over the
file, and the file over the defaults. A bad or unknown key is a ``ConfigError`` that names
the key and where to fix it, so a typo never silently falls back to a default."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from protocols.settings import TomlSettings as _SharedTomlSettings

from ..errors import ConfigError

CONFIG_ENV = "PARKWATCH_CONFIG"


class TomlSettings(_SharedTomlSettings):
    """Base of the control plane's settings classes: errors are ``ConfigError``."""

    config_error: ClassVar[type[Exception]] = ConfigError
    config_env: ClassVar[str | None] = CONFIG_ENV


def resolve_config_file(config: Path | str | None) -> Path | None:
    """The config file to read: ``config``, else ``$PARKWATCH_CONFIG``, else none."""
    return TomlSettings.resolve_config_file(config)
