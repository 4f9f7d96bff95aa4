"""Command-line options into registered config dataclasses.

    --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.workspace.margin_m=0.01 --camera.type=sim

``--<group>.type`` picks the registered dataclass (the group's default type when absent); every
other ``--<group>.<field>[.<field>...]=<value>`` sets a field, nested dataclasses by dots. Values
are parsed by the field's type: bool (true/false/1/0/yes/no), int, float (inf allowed), str,
tuples and lists as JSON (``[-0.04, 0.18]``), ``none`` for optional fields. Unknown types,
unknown fields and bad values raise `ConfigError` naming the option.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any


class ConfigError(ValueError):
    """A command-line option that does not fit the config (message names the option)."""


ConfigLookup = Callable[[str], type]


def split_options(argv: Sequence[str], groups: Sequence[str]) -> tuple[dict[str, dict], list[str]]:
    """Pick ``--group.key=value`` (or ``--group.key value``) options out of argv.

    Returns ({group: {dotted key: raw value}}, the other arguments in order).
    """
    found: dict[str, dict] = {g: {} for g in groups}
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        group = next((g for g in groups if arg.startswith(f"--{g}.")), None)
        if group is None:
            rest.append(arg)
            i += 1
            continue
        key, eq, value = arg[len(group) + 3 :].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ConfigError(f"{arg}: missing value (use {arg}=VALUE)")
            value = args[i + 1]
            i += 1
        if not key:
            raise ConfigError(f"{arg}: missing field name after '--{group}.'")
        if key in found[group]:
            raise ConfigError(f"--{group}.{key} given twice")
        found[group][key] = value
        i += 1
    return found, rest


def build_config(group: str, options: dict[str, str], lookup: ConfigLookup, default_type: str):
    """Build the config dataclass of one group from its raw options.

    Args:
        group: option prefix, e.g. "arm" (used in messages).
        options: {dotted field: raw string} from `split_options`.
        lookup: type name -> config class; raises ValueError for unknown names.
        default_type: type used when ``--<group>.type`` is absent.
    """
    options = dict(options)
    type_name = options.pop("type", default_type)
    try:
        cls = lookup(type_name)
    except ValueError as e:
        raise ConfigError(f"--{group}.type: {e}") from None
    try:
        return _build(cls, options, f"--{group}")
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"--{group} (type {type_name}): {e}") from None


def _build(cls: type, options: dict[str, str], prefix: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, str]] = {}
    for key, raw in options.items():
        name, dot, sub = key.partition(".")
        if name not in fields:
            raise ConfigError(
                f"{prefix}.{key}: {cls.__name__} has no field {name!r}; fields: {sorted(fields)}"
            )
        hint = hints[name]
        if dot:
            if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
                raise ConfigError(f"{prefix}.{key}: {name!r} has no sub-fields")
            nested.setdefault(name, {})[sub] = raw
        else:
            if isinstance(hint, type) and dataclasses.is_dataclass(hint):
                raise ConfigError(f"{prefix}.{key}: set its fields, e.g. {prefix}.{key}.<field>=")
            direct[name] = parse_value(raw, hint, f"{prefix}.{key}")
    for name, sub_options in nested.items():
        direct[name] = _build(hints[name], sub_options, f"{prefix}.{name}")
    try:
        return cls(**direct)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix}: {e}") from None


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def parse_value(raw: str, hint: Any, option: str) -> Any:
    """Parse one raw string by a type hint; ConfigError names ``option`` on failure."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() == "none" and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return parse_value(raw, a, option)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{option}: cannot parse {raw!r}")
    if hint is bool:
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ConfigError(f"{option}={raw!r}: expected a boolean (true/false)")
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{option}={raw!r}: expected an integer") from None
    if hint is float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{option}={raw!r}: expected a number") from None
        if math.isnan(value):
            raise ConfigError(f"{option}={raw!r}: NaN is not a valid setting")
        return value
    if hint is str:
        return raw
    if hint in (tuple, list) or origin in (tuple, list):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(f"{option}={raw!r}: expected a JSON list, e.g. [1, 2]") from None
        if not isinstance(value, list):
            raise ConfigError(f"{option}={raw!r}: expected a JSON list, e.g. [1, 2]")
        return _tuples(value) if (hint is tuple or origin is tuple) else value
    raise ConfigError(f"{option}: fields of type {hint!r} cannot be set from the command line")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
