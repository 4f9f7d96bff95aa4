"""A fully simulated session: the sim arm's canvas is the canvas (no camera), the planner and
the arm share the canvas geometry, the proposer is the best one available offline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cofrida.session.proposers import default_proposer
from cofrida.session.session import Session, SessionConfig
from planner import Planner, PlannerConfig
from robot.arms import make_arm
from robot.arms.sim import SimArmConfig
from sim import Brush, Canvas
from sim.palette import Palette


def open_sim_session(
    folder: str | Path,
    config: SessionConfig | None = None,
    planner_config: PlannerConfig | None = None,
    canvas_px: int = 256,
    speed_factor: float = 0.0,
    brush: str = "round",
    palette: str = "acrylic",
    proposer=None,
    scorer=None,
) -> Session:
    """Open (or create) a simulated session in `folder`.

    Args:
        config: the session's settings (a reopened session keeps its own).
        planner_config: the planner's settings; default `PlannerConfig(seed=config.seed)`.
        canvas_px: canvas width in pixels for planning and the sim arm (height keeps the
            letter-landscape aspect of the arm's workspace).
        speed_factor: the sim arm's speed (0: no waits; 1: real arm speed).
        brush, palette: the robot's brush preset and palette preset.
        proposer: default `default_proposer(palette)` (the edit model, or the stand-in).
        scorer: proposal scorer; default the shipped offline scene scorer (`load_scorer()`);
            pass ``False`` for none (proposals keep the proposer's order, without scores).
    """
    config = config or SessionConfig()
    arm = make_arm(
        SimArmConfig(canvas_px=canvas_px, brush=brush, speed_factor=speed_factor, seed=config.seed)
    )
    arm.connect()
    ws = arm.config.workspace
    paints = Palette.preset(palette)
    planner_config = planner_config or PlannerConfig(seed=config.seed)
    # The planner keeps at least the arm's own margin, so no planned stroke is refused.
    margin = max(planner_config.margin_m, ws.margin_m)
    planner = Planner(
        Canvas(ws.canvas_width_m, ws.canvas_height_m, canvas_px),
        Brush.preset(brush),
        paints,
        dataclasses.replace(planner_config, margin_m=margin),
    )
    proposer = proposer or default_proposer(paints)
    if scorer is None:
        from cofrida.scorer import load_scorer

        scorer = load_scorer()
    scorer = scorer or None
    return Session(folder, arm, None, proposer, planner, scorer=scorer, config=config)
