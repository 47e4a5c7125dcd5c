"""A settings class rendered as a Markdown reference: every key, its type, default,
environment variable and description, section by section (``[drift]``, ``[[cameras]]``).

``scripts/settings_reference.py`` writes docs/settings.md from the three components'
classes with it; a test fails when the doc is stale. Part of the small dependency-free
toolkit ``protocols`` shares with every component.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from .settings import env_names


def type_name(annotation: Any) -> str:
    """A short, stable name of a field's type (``int | None``, ``list[str]``, ``a | b``)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()  # type: ignore[call-arg]
        except TypeError:
            return "(computed)"
        if isinstance(value, BaseModel):
            return "(section)"
        if callable(field.default_factory) and getattr(
            field.default_factory, "__name__", "") not in ("<lambda>", "list", "dict"):
            return "(computed)"
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, (list, dict)) and not value:
        return "`[]`" if isinstance(value, list) else "`{}`"
    if isinstance(value, (list, tuple)) and any("/" in str(v) for v in value):
        return "(computed)"  # e.g. the running interpreter's path: differs per machine
    text = str(getattr(value, "value", value))
    return f"`{text}`"


def _section_model(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """``(kind, model)`` when a field holds settings of its own: a table, an array of
    tables or a table of tables."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table", annotation
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return "array", args[0]
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and issubclass(
            args[1], BaseModel):
        return "map", args[1]
    return None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(rows: list[tuple[str, str, str, str, str]], with_env: bool) -> list[str]:
    if with_env:
        lines = ["| key | type | default | environment | description |", "|---|---|---|---|---|"]
        lines += [f"| `{k}` | {t} | {d} | {e} | {_cell(s)} |" for k, t, d, e, s in rows]
    else:
        lines = ["| key | type | default | description |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {t} | {d} | {_cell(s)} |" for k, t, d, _e, s in rows]
    return lines


def reference(cls: type[BaseModel], heading: str, *, level: int = 2) -> str:
    """The Markdown reference of ``cls`` (top-level keys, then one part per section)."""
    return "\n".join(_render(cls, heading, level, prefix="", top=True)) + "\n"


def _render(cls: type[BaseModel], heading: str, level: int, prefix: str, top: bool) -> list[str]:
    lines = [f"{'#' * level} {heading}", ""]
    doc = (cls.__doc__ or "").strip()
    if doc:
        lines += [" ".join(doc.split()), ""]
    with_env = top and issubclass(cls, BaseSettings)
    rows: list[tuple[str, str, str, str, str]] = []
    sections: list[tuple[str, type[BaseModel], str]] = []
    for name, field in cls.model_fields.items():
        nested = _section_model(field.annotation)
        env = ", ".join(f"`{e}`" for e in env_names(cls, name, field)) if with_env else ""
        rows.append((name, _cell(type_name(field.annotation)), default_text(field), env,
                     field.description or ""))
        if nested is not None:
            kind, model = nested
            title = {"table": f"[{prefix}{name}]", "array": f"[[{prefix}{name}]]",
                     "map": f"[{prefix}{name}.<name>]"}[kind]
            sections.append((title, model, f"{prefix}{name}."))
    lines += _table(rows, with_env)
    for title, model, sub_prefix in sections:
        lines += ["", *_render(model, f"`{title}`", level + 1, sub_prefix, top=False)]
    return lines


__all__ = ["default_text", "reference", "type_name"]
