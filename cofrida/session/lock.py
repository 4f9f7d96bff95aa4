"""One owner per session: an OS file lock (``flock``) on ``session.lock`` held while a session
is open for writing.

The operating system drops the lock when its holder exits, however it exits (``kill -9``
included), so a crashed owner never blocks the next one. The lock file also records who holds
it (process id, host, command, since when) so the second opener's error can name the holder.
Readers (`SessionStore(readonly=True)`) take no lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = "session.lock"


class SessionInUse(ValueError):
    """The session is open in another process (or another `SessionStore` of this one)."""


class SessionLock:
    """Take the exclusive lock of the session in `folder` (which must exist), or raise.

    Raises:
        SessionInUse: another opener holds it; the message names the holder and what to do.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._file = open(self.path, "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(self.path)
            self._file.close()
            raise SessionInUse(
                f"session {Path(folder)} is already open ({holder}); one process at a time "
                "may work on a session: close it there first (or look at it read-only)"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(holder_info()))
        self._file.flush()

    def release(self) -> None:
        """Give the lock up (idempotent). The file stays: deleting it would race a new owner."""
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def holder_info() -> dict:
    """Who this process is, as the lock file records it."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[
            :200
        ],
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def describe_holder(lock_path: Path) -> str:
    """'held by process 123 on host (cofrida demo ...) since ...', from the lock file."""
    try:
        info = json.loads(Path(lock_path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "held by another process"
    command = f" ({info['command']})" if info.get("command") else ""
    return (
        f"held by process {info['pid']} on {info.get('host', '?')}{command} since "
        f"{info.get('since', '?')}"
    )


def is_locked(folder: Path) -> bool:
    """Whether some process holds the session in `folder` open right now."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file():
        return False
    with open(path) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
