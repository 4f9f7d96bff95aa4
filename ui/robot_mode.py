"""The app's real mode: the canvas comes from the configured camera (rectified and colour
corrected with the robot's saved calibrations) and plans go to the configured arm.

    cofrida ui --robot real --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.name=plotter \\
        --camera.type=opencv --camera.device=0

The arm and camera are the registered drivers of `robot.arms` / `robot.cameras`, built from
``--arm.*`` / ``--camera.*`` options by `robot.cli_config`; ``--arm.type=sim --camera.type=sim``
is a dry run of the whole set-up. Calibrate first with ``cofrida robot calibrate`` (same
options): without a saved canvas calibration for the arm's name the app refuses to start a
session and says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cofrida.session import Session, SessionConfig
from planner import Planner
from robot.arms import arm_config_class, make_arm
from robot.calibration import CanvasCalibration, ColorCalibration, load_calibration
from robot.cameras import camera_config_class, make_camera
from robot.cli_config import build_config
from sim import Brush, Canvas
from sim.palette import Palette


def device_configs(arm_options: dict, camera_options: dict):
    """The arm and camera config dataclasses from raw ``--arm.*`` / ``--camera.*`` options.

    Raises:
        robot.cli_config.ConfigError: an unknown type or field, or a bad value.
        ValueError: the sim camera with a real arm (it can only film the sim arm).
    """
    arm_cfg = build_config("arm", arm_options, arm_config_class, "sim")
    cam_cfg = build_config("camera", camera_options, camera_config_class, "sim")
    if cam_cfg.type == "sim" and arm_cfg.type != "sim":
        raise ValueError("--camera.type=sim films the sim arm; use --arm.type=sim with it")
    return arm_cfg, cam_cfg


def _rectifier(robot_name: str, frame_size: tuple[int, int]):
    """frame (H, W, 3) uint8 -> rectified, colour-corrected canvas (h, w, 3) uint8."""
    try:
        canvas_cal = CanvasCalibration.from_dict(load_calibration(robot_name, "canvas"))
    except FileNotFoundError:
        raise ValueError(
            f"no canvas calibration saved for robot {robot_name!r}: run `cofrida robot "
            "calibrate` with the same --arm/--camera options first"
        ) from None
    if tuple(canvas_cal.image_size) != tuple(frame_size):
        raise ValueError(
            f"the canvas calibration of {robot_name!r} is for {canvas_cal.image_size} px frames "
            f"but the camera gives {frame_size}: calibrate again"
        )
    try:
        color_cal = ColorCalibration.from_dict(load_calibration(robot_name, "color"))
    except FileNotFoundError:
        color_cal = None

    def rectify(frame: np.ndarray) -> np.ndarray:
        out = canvas_cal.rectify(frame)
        return color_cal.apply(out) if color_cal is not None else out

    return rectify


def _default_scorer():
    """The shipped offline proposal scorer, as simulated sessions use; None if there is none
    (proposals then keep the proposer's order, unscored)."""
    try:
        from cofrida.scorer import load_scorer

        return load_scorer()
    except (ImportError, TypeError, FileNotFoundError, OSError):
        return None


def open_robot_session(folder: Path, app, session_config: SessionConfig, proposer) -> Session:
    """Open (or create) a session on the configured arm and camera.

    Args:
        folder: the session folder.
        app: the `ui.state.AppConfig` (arm/camera options, palette, brush, planner, canvas_px).
        session_config: the session's settings.
        proposer: the proposer shared by the app.
    Raises:
        ValueError: bad device options, or no saved calibration (the message says what to run).
    """
    arm_cfg, cam_cfg = device_configs(app.arm_options, app.camera_options)
    arm = make_arm(arm_cfg)
    arm.connect()
    camera = None
    try:
        camera = make_camera(cam_cfg, **({"arm": arm} if cam_cfg.type == "sim" else {}))
        camera.connect()
        rectify = _rectifier(arm_cfg.name, (cam_cfg.width, cam_cfg.height))
        ws = arm_cfg.workspace
        planner_config = app.planner
        if planner_config.margin_m < ws.margin_m:  # never plan a stroke the arm refuses
            from dataclasses import replace

            planner_config = replace(planner_config, margin_m=ws.margin_m)
        planner = Planner(
            Canvas(ws.canvas_width_m, ws.canvas_height_m, app.canvas_px),
            Brush.preset(getattr(arm_cfg, "brush", app.brush)),
            Palette.preset(app.palette),
            planner_config,
        )
        return Session(
            folder, arm, camera, proposer, planner, config=session_config, rectify=rectify
        )
    except BaseException:
        if camera is not None and camera.is_connected:
            camera.disconnect()
        arm.disconnect()
        raise
