"""Progress reporting and cancellation shared by every long planner call.

A long call takes ``on_progress(info: dict)`` (called every few steps with at least ``phase``,
``step`` and ``total``) and ``should_stop() -> bool`` (polled as often). When `should_stop`
returns True the call raises `Cancelled` before writing anything, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]


class Cancelled(RuntimeError):
    """Raised by a long planner call when its `should_stop` callback returned True."""


def check_stop(should_stop: StopFn | None, what: str) -> None:
    """Raise `Cancelled` naming `what` if `should_stop` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled(f"{what} was cancelled")


def report(on_progress: ProgressFn | None, **info) -> None:
    """Call `on_progress(info)` if given."""
    if on_progress is not None:
        on_progress(info)
