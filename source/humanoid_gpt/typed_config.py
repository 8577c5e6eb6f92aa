"""Dataclass configs from YAML mappings with their types checked: a clear ConfigError naming the field and the
value (``hme.pae.min_steps='lots' is not a int``) instead of a TypeError deep inside whatever first uses it."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from humanoid_gpt.errors import ConfigError


def build_dataclass(cls: type, raw: Any, where: str) -> Any:
    """``cls`` from the mapping ``raw``: unknown or missing fields and values of the wrong type are ConfigErrors
    naming ``where``; nested dataclasses are built the same way."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a mapping of {cls.__name__} fields expected, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {sorted(fields)}")
    missing = [
        n
        for n, f in fields.items()
        if n not in raw and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: field(s) {missing} missing")
    return cls(**{k: typed_value(hints[k], v, f"{where}: {k}") for k, v in raw.items()})


def typed_value(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value or {}, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return typed_value(arg, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}={value!r} is not a {hint}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}={value!r}; one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}={value!r}: a list expected")
        return [typed_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is dict and isinstance(value, dict):
        return value
    if isinstance(hint, type) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{where}={value!r} is not a {getattr(hint, '__name__', hint)}")
