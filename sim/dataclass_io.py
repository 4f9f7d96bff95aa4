"""Dataclass <-> dict for configs, with unknown fields refused by name (typos must not pass)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def check_fields(what: str, data: Any, known, required=()) -> dict:
    """Check a JSON object before it is read: an object, no unknown fields, none missing.

    Args:
        what: the type being read, named in every error ("Strokes", "Plan", ...).
        known: every field it may have; required: those it must have.
    Returns:
        `data`, checked.
    Raises:
        ValueError: naming the unknown (with the known) or the missing fields.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{what}: expected a JSON object, got {type(data).__name__}")
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"{what}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    missing = set(required) - set(data)
    if missing:
        raise ValueError(f"{what}: missing fields {sorted(missing)}")
    return data


def from_known_fields(cls: type[T], data: Any, **converted: Any) -> T:
    """Build dataclass `cls` from `data`, refusing fields it does not have.

    Args:
        data: a dict of field values (anything else is refused with its type named).
        converted: values that replace ``data``'s (e.g. lists turned back into tuples).
    Raises:
        ValueError: naming the unknown fields and the known ones.
    """
    check_fields(cls.__name__, data, {f.name for f in fields(cls)})
    return cls(**{**data, **converted})
