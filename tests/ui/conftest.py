"""Fixtures of the UI tests: a small, fast app configuration and a tab on it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio", reason="the UI needs the 'ui' extra: pip install -e '.[ui]'")

from cofrida.session import SceneProposer
from sim.palette import Palette
from ui.state import QUICK_PLANNER, AppConfig, SessionOpener, TabState

STROKES = 12  # robot strokes per turn in these tests
CANVAS_PX = 128  # canvas width (px): height 99 px at the sim arm's letter-landscape aspect


def free_port() -> int:
    """A TCP port on the loopback address that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_from_a_terminal() -> None:
    """In the server's process before exec: Ctrl-C (SIGINT) acts, as in a terminal. A test run
    started in the background (``make test &``, some CI runners) ignores SIGINT, and a child
    inherits that, so the Ctrl-C test would wait for a server that cannot hear it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_ui(args: list[str], log_path: Path, env: dict, startup_s: float = 120):
    """`python -m cofrida ui --port P *args` in its own process, output to `log_path`, with
    `env` over this process' environment (a None value unsets); waits until its page answers
    (the server imports torch and gradio: slow on a busy machine).

    Returns (process, URL). Fails the test, with the server's log, when the process exits or
    does not answer within `startup_s` (and kills it then).
    """
    port = free_port()
    cmd = [sys.executable, "-m", "cofrida", "ui", "--port", str(port), *args]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env}
    env = {k: v for k, v in env.items() if v is not None}  # None: unset
    with open(log_path, "w") as log:  # the child keeps its own handle
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_as_from_a_terminal
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + startup_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"cofrida ui exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"cofrida ui did not start in {startup_s} s: {log_path.read_text()}")
        time.sleep(0.25)


def small_config(tmp_path, **overrides) -> AppConfig:
    """An app configuration that plans in about a second on a busy 2-core machine."""
    values = dict(
        session_dir=tmp_path / "sessions", strokes=STROKES, proposals=2, canvas_px=CANVAS_PX,
        planner=QUICK_PLANNER,
    )  # fmt: skip
    values.update(overrides)
    return AppConfig(**values)


@pytest.fixture
def opener(tmp_path):
    """A session opener with the stand-in proposer (no model import: fast); closed after the
    test like a stopped server (its temporary folder goes)."""
    made = SessionOpener(
        small_config(tmp_path), proposers={"acrylic": SceneProposer(Palette.preset("acrylic"))}
    )
    yield made
    made.close()


@pytest.fixture
def tab(opener):
    """One browser tab's state; closed after the test."""
    state = TabState(opener)
    yield state
    state.close()


def line_drawing(editor_value: dict, rgb=(20, 20, 20)) -> dict:
    """The editor value with a thick horizontal line brushed on one layer (like a person)."""
    background = editor_value["background"]
    h, w = background.shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    layer[h // 2 - 4 : h // 2 + 4, w // 8 : 7 * w // 8] = (*rgb, 255)
    return {"background": background, "layers": [layer], "composite": None}
