"""Robot-to-canvas calibration on a mis-registered sim arm filmed by the sim camera."""

import json

import numpy as np
import pytest
import torch

from cofrida.cli import main
from robot.arms import make_arm
from robot.arms.grbl import GrblArmConfig
from robot.arms.grbl.protocol import job_lines
from robot.arms.sim import SimArmConfig
from robot.calibration import calibrate_canvas, load_calibration, save_calibration
from robot.calibration.robot_to_canvas import (
    RobotToCanvas,
    RobotToCanvasConfig,
    calibrate_robot_to_canvas,
    fit_affine,
    verify_robot_to_canvas,
)
from robot.cameras import make_camera
from robot.cameras.sim import SimCameraConfig
from robot.errors import CalibrationError
from sim.brush_path import BrushPath

# the sheet lies 3 mm right, 2 mm up, turned 0.6 deg and 0.4% larger than the config says
MISREGISTERED = {
    "misregistration_offset_m": (0.003, -0.002),
    "misregistration_rotation_deg": 0.6,
    "misregistration_scale": 1.004,
}


def rig(camera_config=None, **arm_options):
    """(connected sim arm, connected sim camera filming it, the camera's canvas calibration)."""
    arm = make_arm(SimArmConfig(**arm_options))
    arm.connect()
    camera = make_camera(camera_config or SimCameraConfig(), arm=arm)
    camera.connect()
    return arm, camera, calibrate_canvas(camera.capture(), arm.canvas)


def canvas_grid(arm, n=25):
    """(n*n, 2) canvas meters covering the paint box."""
    x0, y0, x1, y1 = arm.config.workspace.paint_box
    xs, ys = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.stack([xs.ravel(), ys.ravel()], 1)


def test_misregistered_arm_lands_within_half_a_mm_after_calibration():
    arm, camera, canvas_cal = rig(name="crooked", **MISREGISTERED)
    grid = canvas_grid(arm)
    before_mm = np.linalg.norm(arm.true_xy(grid) - grid, axis=1) * 1000
    assert before_mm.max() > 4.0  # what the mis-registration does uncorrected

    mapping = calibrate_robot_to_canvas(arm, camera, canvas_cal)
    figures = mapping.summary()
    assert figures["dots_found"] == figures["dots"] == 20
    assert figures["error_before_max_mm"] > np.hypot(3, 2)  # the dots landed off by more
    assert figures["residual_max_mm"] < 1.0  # only the arm's repeatability (~0.3 mm) is left
    assert figures["shift_mm"] == pytest.approx([3.0, -2.0], abs=0.3)
    assert figures["rotation_deg"] == pytest.approx(0.6, abs=0.1)
    # the fitted map against the truth, over the whole paint box
    fit_mm = np.linalg.norm(mapping.actual_m(grid) - arm.true_xy(grid), axis=1) * 1000
    assert fit_mm.max() < 0.5, fit_mm.max()

    # saved, an arm of the same name applies it: new dots land where they are meant to
    save_calibration("crooked", "robot_to_canvas", mapping.to_dict())
    camera.disconnect()
    arm.disconnect()
    arm, camera, canvas_cal = rig(name="crooked", **MISREGISTERED)
    assert arm.robot_to_canvas is not None
    check = verify_robot_to_canvas(arm, camera, canvas_cal)
    assert check["dots_found"] == check["dots"] == 12
    assert check["err_mean_mm"] < 0.6 and check["err_max_mm"] < 1.2, check  # repeatability


def test_correction_comes_before_the_safety_check_and_reaches_the_wire():
    mapping = RobotToCanvas(np.array([[1.0, 0.0, 0.004], [0.0, 1.0, -0.003]]))
    save_calibration("plotter", "robot_to_canvas", mapping.to_dict())
    arm = make_arm(GrblArmConfig(name="plotter"))  # not connected: G-code only
    t = torch.linspace(0, 1, 5)
    path = BrushPath(torch.stack([0.05 + 0.05 * t, 0.1 + 0 * t, 0.5 + 0 * t], 1), torch.zeros(3))
    safe = arm.check([path])
    np.testing.assert_allclose(safe[0].points[:, 0], path.points[:, 0] - 0.004, atol=1e-7)
    np.testing.assert_allclose(safe[0].points[:, 1], path.points[:, 1] + 0.003, atol=1e-7)
    assert "G1 X46 Y112.9" in [line.text for line in job_lines(safe, arm.config)]  # Y up
    # a target the correction pushes out of the paint box is refused, not sent elsewhere
    edge = BrushPath(torch.tensor([[0.006, 0.1, 0.5], [0.02, 0.1, 0.5]]), torch.zeros(3))
    with pytest.raises(ValueError, match="outside the workspace"):
        arm.check([edge])
    assert make_arm(GrblArmConfig(name="plotter", use_calibration=False)).robot_to_canvas is None


def test_fit_and_round_trip_without_a_camera():
    rng = np.random.default_rng(0)
    commanded = rng.uniform(0.02, 0.2, (8, 2))
    true = np.array([[1.002, -0.01, 0.003], [0.01, 0.998, -0.002]])
    matrix, residual = fit_affine(commanded, commanded @ true[:, :2].T + true[:, 2])
    np.testing.assert_allclose(matrix, true, atol=1e-12)
    assert residual.max() < 1e-12
    mapping = RobotToCanvas.from_dict(json.loads(json.dumps(RobotToCanvas(matrix).to_dict())))
    np.testing.assert_allclose(mapping.actual_m(mapping.commanded_m(commanded)), commanded)
    with pytest.raises(CalibrationError, match="3 dots not on one line"):
        fit_affine(np.array([[0.0, 0.0], [0.1, 0.1], [0.2, 0.2]]), np.zeros((3, 2)))


def test_too_few_dots_found_is_refused_naming_them():
    # the true surface is 5 mm below the configured one: the dots never touch the paper
    arm, camera, canvas_cal = rig(SimCameraConfig(width=480, height=360), surface_error_m=-0.005)
    with pytest.raises(CalibrationError, match=r"found 0 of 9 dots .*#0 \(x 30.0, y 30.0 mm\)"):
        calibrate_robot_to_canvas(arm, camera, canvas_cal, RobotToCanvasConfig(rows=3, cols=3))
    with pytest.raises(FileNotFoundError, match="cofrida robot calibrate-robot"):
        load_calibration("default", "robot_to_canvas")  # nothing was saved


def test_cofrida_robot_calibrate_robot_sim(capsys):
    args = ["robot", "calibrate-robot", "--arm.type=sim", "--arm.name=simbot",
            "--arm.misregistration_offset_m=[0.002,0.001]", "--camera.type=sim",
            "--camera.width=480", "--camera.height=360", "--rows", "3", "--cols", "3"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["dots_found"] == 9 and summary["shift_mm"] == pytest.approx([2, 1], abs=0.4)
    assert summary["saved"].endswith("calibrations/simbot/robot_to_canvas.json")
    assert "found 9/9 dots" in captured.err
