"""Checks a command runs on its output folder *before* the work starts, so a mistyped, read-only
or full destination fails in a second with a message, not after minutes of planning with a
traceback; and the message for a write that fails anyway (the disk filled up meanwhile)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

MIN_FREE_BYTES = 20 * 2**20  # a plan, a few PNGs and a GIF need a few MB; refuse below 20 MB


def prepare_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Create `path` if needed and prove it is a writable folder with room to write in.

    Args:
        path: the output folder.
        option: how the command line names it, for the messages.
    Returns:
        the folder as a Path.
    Raises:
        ValueError: `path` (or a parent) is a file, cannot be created, is not writable, or its
            disk has less than `MIN_FREE_BYTES` free; the message says which.
    """
    folder = Path(path)
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is" if parent == folder else f"is inside {parent}, which is"
            raise ValueError(f"{option} {folder} {where} a file, not a folder: give a folder")
        if parent.exists():
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create {option} folder {folder}: {e.strerror or e}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as e:
        raise ValueError(f"cannot write into {option} folder {folder}: {e.strerror or e}") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise ValueError(
            f"the disk of {option} folder {folder} is full ({free / 2**20:.1f} MB free, "
            f"{MIN_FREE_BYTES / 2**20:.0f} MB needed): free some space or choose another folder"
        )
    return folder


def write_error_message(e: OSError, folder: str | Path) -> str:
    """One line for a write that failed after the checks (e.g. the disk filled up)."""
    what = {errno.ENOSPC: "the disk is full", errno.EROFS: "the disk is read-only"}.get(
        e.errno, e.strerror or str(e)
    )
    where = e.filename or folder
    return f"could not write {where}: {what}"
