"""Where per-user state lives: calibrations, sessions, caches. Never the repository.

``$COFRIDA_HOME`` moves it; otherwise ``$XDG_DATA_HOME/cofrida`` or ``~/.local/share/cofrida``.
"""

from __future__ import annotations

import os
from pathlib import Path


def user_data_dir(*parts: str, create: bool = True) -> Path:
    """The user data directory (or a sub-path of it), created on first use by default."""
    root = os.environ.get("COFRIDA_HOME")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        base = Path(xdg).expanduser() / "cofrida"
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
