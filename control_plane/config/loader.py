"""One TOML file and ``PARKWATCH_*`` environment variables into a settings object.

The file is given with ``--config`` or ``PARKWATCH_CONFIG``; the environment wins over the
file, and the file over the defaults. A bad or unknown key is a ``ConfigError`` that names
the key and the file, so a typo never silently falls back to a default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Self

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)

from ..errors import ConfigError

CONFIG_ENV = "PARKWATCH_CONFIG"
# The TOML file of the settings being loaded; a context variable so that two
# loads with different files (tests, several apps in one process) never mix.
_toml_file: ContextVar[Path | None] = ContextVar("parkwatch_toml_file", default=None)


def resolve_config_file(config: Path | str | None) -> Path | None:
    """The config file to read: ``config``, else ``$PARKWATCH_CONFIG``, else none."""
    raw = config if config is not None else os.environ.get(CONFIG_ENV)
    if raw is None or str(raw) == "":
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist (from --config or {CONFIG_ENV})")
    return path


@contextmanager
def _reading(path: Path | None) -> Iterator[None]:
    token = _toml_file.set(path)
    try:
        yield
    finally:
        _toml_file.reset(token)


class TomlSettings(BaseSettings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _toml_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, config: Path | str | None = None, **overrides: Any) -> Self:
        """Read settings from env and the TOML file; raise ConfigError naming the bad key."""
        path = resolve_config_file(config)
        try:
            with _reading(path):
                return cls(**overrides)
        except ValidationError as exc:
            where = f" in {path}" if path else ""
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            raise ConfigError(f"invalid {cls.__name__}{where}: {problems}") from None
