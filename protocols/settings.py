"""One way every component loads its settings: a TOML file plus ``PARKWATCH_*`` variables.

A component's settings class derives from :class:`TomlSettings` (pydantic-settings) and
sets three class attributes: the error type its CLI prints as one line
(``config_error``), the name its messages use (``settings_name``), and the environment
variable that may name the file (``config_env``, or None). Precedence, highest first:
explicit overrides (CLI flags; ``None`` means "not given"), the environment, the TOML
file, the defaults.

Every failure is one line that names the key and where to fix it (the file, or the
environment variable that set it); an unknown key suggests the nearest known one.
``protocols.settings_reference`` renders the classes as docs/settings.md.
Part of the small dependency-free toolkit ``protocols`` shares with every component.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)


class SettingsError(ValueError):
    """Settings that cannot work; the message is one line naming the key and the fix."""


# The TOML file of the settings being loaded; a context variable so that two loads with
# different files (tests, several apps in one process) never mix.
_toml_file: ContextVar[Path | None] = ContextVar("parkwatch_toml_file", default=None)
MAX_PROBLEMS = 5


@contextmanager
def _reading(path: Path | None) -> Iterator[None]:
    token = _toml_file.set(path)
    try:
        yield
    finally:
        _toml_file.reset(token)


def env_names(cls: type[BaseModel], name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set top-level field ``name`` of ``cls``."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    prefix = str(cls.model_config.get("env_prefix", ""))
    return [f"{prefix}{name}".upper()]


class TomlSettings(BaseSettings):
    """Base of every component's settings: the file and the environment, one error format."""

    config_error: ClassVar[type[Exception]] = SettingsError
    settings_name: ClassVar[str] = "settings"
    config_env: ClassVar[str | None] = None

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
    def resolve_config_file(cls, config: Path | str | None) -> Path | None:
        """The file to read: ``config``, else ``$config_env`` (when the class has one)."""
        raw: Path | str | None = config
        if raw is None and cls.config_env is not None:
            raw = os.environ.get(cls.config_env)
        if raw is None or str(raw) == "":
            return None
        path = Path(raw).expanduser()
        via = f" (from --config or {cls.config_env})" if cls.config_env else ""
        if not path.is_file():
            raise cls.config_error(f"config file {path} does not exist{via}: fix the path")
        try:
            tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise cls.config_error(f"{path} is not valid TOML: {exc}") from None
        return path

    @classmethod
    def load(cls, config: Path | str | None = None, **overrides: Any) -> Self:
        """Read settings from ``overrides``, the environment and the TOML file; raise
        ``config_error`` with one line naming each bad key and where to fix it."""
        path = cls.resolve_config_file(config)
        given = {key: value for key, value in overrides.items() if value is not None}
        try:
            with _reading(path):
                return cls(**given)
        except ValidationError as exc:
            where = f" in {path}" if path else ""
            problems = describe_errors(cls, exc, path=path, given=given)
            raise cls.config_error(f"invalid {cls.settings_name}{where}: {problems}") from None


def describe_errors(
    cls: type[BaseSettings],
    exc: ValidationError,
    *,
    path: Path | None = None,
    given: Mapping[str, Any] | None = None,
) -> str:
    """Each problem as ``key: what is wrong (where to fix it)``, at most MAX_PROBLEMS."""
    parts = [_describe(cls, err, path, given or {}) for err in exc.errors()[:MAX_PROBLEMS]]
    if exc.error_count() > MAX_PROBLEMS:
        parts.append(f"and {exc.error_count() - MAX_PROBLEMS} more")
    return "; ".join(parts)


def _describe(
    cls: type[BaseSettings], err: Any, path: Path | None, given: Mapping[str, Any]
) -> str:
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "<root>"
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key: {_unknown_key_fix(cls, loc)}"
    field = cls.model_fields.get(loc[0]) if loc else None
    if field is None:
        return f"{key}: {message}"
    envs = env_names(cls, loc[0], field)
    if err["type"] == "missing":
        where = f" in {path}" if path else " in the config file"
        return f"{key}: required: set it{where} or in {envs[0]}"
    if loc[0] in given:
        source = "as given on the command line"
    else:
        source = next((f"from {env}" for env in envs if env in os.environ),
                      f"in {path}" if path else "its default")
    return f"{key}: {message} ({source})"


def _unknown_key_fix(cls: type[BaseModel], loc: list[str]) -> str:
    model: type[BaseModel] | None = cls
    for part in loc[:-1]:
        field = model.model_fields.get(part) if model else None
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(
            annotation, BaseModel) else None
    known = list(model.model_fields) if model else []
    close = difflib.get_close_matches(loc[-1], known, n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "remove it (docs/settings.md lists every key)"


__all__ = ["SettingsError", "TomlSettings", "describe_errors", "env_names"]
