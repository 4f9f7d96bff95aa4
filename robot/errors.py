"""Typed errors shared by every device, and the decorators that raise them.

A driver method decorated with `requires_connection` raises `NotConnectedError` when called
before `connect()`; `connect` itself is decorated with `refuses_reconnect` so a second call
raises `AlreadyConnectedError` instead of silently opening the port twice.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class RobotError(RuntimeError):
    """Base class of every error the `robot` package raises on purpose."""


class NotConnectedError(RobotError):
    """A device method needs a connection and the device is not connected."""


class AlreadyConnectedError(RobotError):
    """`connect()` was called on a device that is already connected."""


class DeviceConnectionError(RobotError):
    """The device could not be opened, or the connection was lost."""


class CalibrationError(RobotError, ValueError):
    """A calibration procedure found no trustworthy result (the message says why and what to
    check); nothing was saved."""


def requires_connection(method: F) -> F:
    """Decorator: raise `NotConnectedError` unless ``self.is_connected``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if not self.is_connected:
            raise NotConnectedError(
                f"{type(self).__name__}.{method.__name__}: not connected; call connect() first"
            )
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def refuses_reconnect(method: F) -> F:
    """Decorator: raise `AlreadyConnectedError` if ``self.is_connected``."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.is_connected:
            raise AlreadyConnectedError(
                f"{type(self).__name__} is already connected; call disconnect() first"
            )
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
