"""Dataclass <-> dict for configs, with unknown fields refused by name (typos must not pass)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_known_fields(cls: type[T], data: Any, **converted: Any) -> T:
    """Build dataclass `cls` from `data`, refusing fields it does not have.

    Args:
        data: a dict of field values (anything else is refused with its type named).
        converted: values that replace ``data``'s (e.g. lists turned back into tuples).
    Raises:
        ValueError: naming the unknown fields and the known ones.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        name = cls.__name__
        raise ValueError(f"{name}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
    return cls(**{**data, **converted})
