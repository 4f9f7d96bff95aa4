"""Fixtures of the UI tests: a small, fast app configuration and a tab on it."""

from __future__ import annotations

import socket

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
