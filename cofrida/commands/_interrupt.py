"""Ctrl-C for long training commands: the first press asks to stop cleanly, the second aborts."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_ctrl_c(what: str = "this step") -> Iterator[Callable[[], bool]]:
    """Yield a ``should_stop()`` poll that turns True after the first Ctrl-C.

    The first SIGINT prints that the job stops after `what` (it then saves and returns); a second
    raises KeyboardInterrupt. The previous handler is restored on exit.
    """
    stop = {"now": False}

    def on_sigint(_signum, _frame):
        if stop["now"]:
            raise KeyboardInterrupt
        stop["now"] = True
        print(f"stopping after {what} (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield lambda: stop["now"]
    finally:
        signal.signal(signal.SIGINT, previous)
