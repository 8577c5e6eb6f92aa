"""Command-line flags generated from a run config dataclass, so each option is defined once, with one default.

Every scalar field becomes a flag spelled ``--num-envs`` (the ``hgpt`` command) or ``--num_envs`` (Isaac Lab's
scripts); a field's ``metadata["help"]`` is its help text. A ``bool`` field that defaults to False is a switch
(``--compile``); one that defaults to True is turned off with ``--no-<name>``. Fields whose type is a dataclass are
flattened (their own scalar fields become flags) when ``metadata["flatten"]`` is set, and skipped otherwise, as are
fields with ``metadata["flag"] = False``. Flags default to None, so :func:`from_args` keeps the dataclass's own
default for every option the user did not give.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

from humanoid_gpt.errors import ConfigError, HGPTError

Style = Literal["hgpt", "isaaclab"]
_SCALARS = (int, float, str, Path)


def _scalar_type(hint: Any) -> tuple[type | None, tuple | None]:
    """(int, float, str, Path or bool; the allowed values of a Literal) for ``X`` and ``X | None``; (None, None) for
    anything else."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else None
    if typing.get_origin(hint) is Literal:
        return str, typing.get_args(hint)
    return (hint if hint in (*_SCALARS, bool) else None), None


def option(help_text: str, minimum: float | None = None, **kw) -> Any:
    """A run-config field that is a command-line option: its help text and, for counts and budgets, the least value
    it may take (checked on the command line and by :func:`check_bounds`)."""
    return dataclasses.field(metadata={"help": help_text, "minimum": minimum}, **kw)


def check_bounds(config: Any, field_prefix: str | None = None) -> None:
    """Refuse an option below its minimum (nested configs included), naming the option and the fix; a config read
    from a file (``field_prefix``: the file and the section, e.g. ``job.yaml: distill.dagger.``) names the field."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_bounds(value, None if field_prefix is None else f"{field_prefix}{f.name}.")
        low = f.metadata.get("minimum")
        if low is not None and value is not None and not value >= low:  # `not >=` also catches NaN
            if field_prefix is not None:
                raise ConfigError(f"{field_prefix}{f.name}={value} must be at least {low}. Fix: set it to {f.default}")
            raise ConfigError(f"{f.name} is {value}; it must be at least {low} (--{f.name.replace('_', '-')})")


def bounded(kind: type, low: float, name: str = "", strict: bool = False):
    """An argparse type: ``kind`` values of at least ``low`` (above it with ``strict``), refused naming ``name``."""

    def parse(text: str):
        value = kind(text)
        if not (value > low if strict else value >= low):  # `not` also refuses NaN
            need = ("positive" if low == 0 else f"above {low}") if strict else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{name + ' ' if name else ''}must be {need}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def destination(folder: bool = False):
    """An argparse type: a path the command will write (a file, or a ``folder``), checked while the options are read,
    before any work, so that argparse names the flag in the refusal (:func:`~humanoid_gpt.io_utils.check_destination`
    says why)."""
    from humanoid_gpt.io_utils import check_destination

    def parse(text: str) -> Path:
        try:
            return check_destination(text, folder)
        except HGPTError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = "folder" if folder else "file"
    return parse


def _flag(name: str, style: Style) -> str:
    return "--" + (name if style == "isaaclab" else name.replace("_", "-"))


def option_fields(cls: type) -> list[tuple[dataclasses.Field, type, tuple | None]]:
    """(field, scalar type, allowed values or None) for every field that is a flag, nested ones included."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("flag", True) is False:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and f.metadata.get("flatten"):
            out += option_fields(hint)
        elif (kind := _scalar_type(hint))[0] is not None:
            out.append((f, *kind))
    return out


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    style: Style = "hgpt",
    exclude: tuple[str, ...] = (),
    required: tuple[str, ...] = (),
) -> None:
    """Add a flag for every option of ``cls`` (see the module docstring), except those named in ``exclude``; fields
    without a default, and those named in ``required``, must be given."""
    for f, kind, choices in option_fields(cls):
        if f.name in exclude:
            continue
        must = f.name in required or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
        help_text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help text with %
        default = f.default if f.default is not dataclasses.MISSING else None
        if kind is bool:
            name = f.name if default is False else f"no_{f.name}"
            text = help_text if default is False else f"off: {help_text}"
            on = default is False
            parser.add_argument(_flag(name, style), dest=f.name, action="store_const", const=on, help=text)
            continue
        shown = f" (default: {default})" if default not in (None, "", dataclasses.MISSING) else ""
        low = f.metadata.get("minimum")
        parse = bounded(kind, low, _flag(f.name, style)) if low is not None else kind
        parser.add_argument(
            _flag(f.name, style), dest=f.name, type=parse, choices=choices, required=must, help=help_text + shown
        )


def from_args(cls: type, args: argparse.Namespace | dict, **overrides):
    """An instance of ``cls`` from parsed flags: given options replace the defaults, nested configs included;
    ``overrides`` replace top-level fields."""
    given = {k: v for k, v in (vars(args) if isinstance(args, argparse.Namespace) else args).items() if v is not None}
    top: dict = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint) and f.metadata.get("flatten"):
            top[f.name] = hint(**{g.name: given[g.name] for g in dataclasses.fields(hint) if g.name in given})
        elif f.name in given and f.metadata.get("flag", True) is not False:
            top[f.name] = given[f.name]
    return cls(**{**top, **overrides})


def to_flags(config: Any, style: Style = "hgpt") -> list[str]:
    """The command-line flags that rebuild ``config`` with :func:`from_args` (options left at their defaults are
    left out): for launching a run in another process, e.g. under torchrun."""
    out: list[str] = []
    values = _flat_values(config)
    for f, kind, _ in option_fields(type(config)):
        value = values[f.name]
        default = f.default if f.default is not dataclasses.MISSING else dataclasses.MISSING
        if value == default or value is None:
            continue
        if kind is bool:
            out.append(_flag(f.name if value else f"no_{f.name}", style))
        else:
            out += [_flag(f.name, style), str(value)]
    return out


def _flat_values(config: Any) -> dict[str, Any]:
    values = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values |= _flat_values(value) if f.metadata.get("flatten") else {f.name: value}
    return values
