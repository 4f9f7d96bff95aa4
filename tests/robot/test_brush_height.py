"""Brush height: dab lower until a mark appears, on the sim arm (true surface unknown to it)."""

import json

import numpy as np
import pytest
import torch

from cofrida.cli import main
from robot.arms import make_arm
from robot.arms.grbl import GrblArmConfig
from robot.arms.grbl.emulator import GrblEmulator
from robot.arms.ros2 import Ros2ArmConfig
from robot.arms.ros2.trajectory import dab_motion, joint_trajectory
from robot.arms.sim import SimArmConfig
from robot.calibration import calibrate_canvas, save_calibration
from robot.calibration.brush_height import (
    BrushHeight,
    BrushHeightConfig,
    CameraMarkCheck,
    PersonMarkCheck,
    default_spot,
    find_brush_height,
)
from robot.cameras import make_camera
from robot.cameras.sim import SimCameraConfig
from robot.errors import CalibrationError
from robot.safety import SafetyError, Workspace
from sim.brush_path import BrushPath

SMALL_CAMERA = SimCameraConfig(width=480, height=360)  # 4x fewer pixels: a faster capture
SPOT = default_spot(Workspace())  # where find_brush_height dabs on the default canvas


def camera_check(arm, camera_config=SMALL_CAMERA, film_arm=True):
    """A connected sim camera (filming the arm's canvas, or blank paper) as a mark check."""
    camera = make_camera(camera_config, **({"arm": arm} if film_arm else {}))
    camera.connect()
    calibration = calibrate_canvas(camera.capture(), camera.canvas)
    return CameraMarkCheck(camera, calibration, SPOT)


@pytest.mark.parametrize(("surface_error_m", "start_m"), [(0.0012, 0.003), (-0.0017, 0.0)])
def test_finds_the_true_surface_within_one_step(surface_error_m, start_m):
    arm = make_arm(SimArmConfig(name="bot", surface_error_m=surface_error_m))
    arm.connect()
    config = BrushHeightConfig(start_height_m=start_m, step_m=0.0005)
    progress = []
    result = find_brush_height(arm, camera_check(arm), config, progress.append)
    assert surface_error_m - 0.0005 < result.surface_offset_m <= surface_error_m
    assert [d["marked"] for d in progress] == [False] * (len(progress) - 1) + [True]
    assert [h for _, _, h in arm.dabs] == [d["height_m"] for d in progress]


def test_saved_brush_height_makes_the_arm_touch_the_true_surface():
    def painted(arm) -> bool:
        t = torch.linspace(0, 1, 8)
        pts = torch.stack([0.05 + 0.05 * t, 0.1 + 0 * t, torch.full((8,), 0.3)], 1)
        arm.execute([BrushPath(pts, torch.zeros(3), 0)])
        return float(arm.canvas_image().min()) < 0.5

    options = {"name": "low", "surface_error_m": -0.0017}  # 1.7 mm below where it is configured
    arm = make_arm(SimArmConfig(**options))
    arm.connect()
    assert not painted(arm)  # pressing depth 0.3 = 0.9 mm: the brush stays in the air
    save_calibration("low", "brush_height", BrushHeight(-0.002, 0.0005).to_dict())
    arm = make_arm(SimArmConfig(**options))
    arm.connect()
    assert arm.brush_height is not None and painted(arm)


def test_a_camera_that_sees_nothing_stops_at_the_floor():
    ws = Workspace(probe_floor_m=0.002)
    arm = make_arm(SimArmConfig(workspace=ws, surface_error_m=-0.005))
    arm.connect()
    config = BrushHeightConfig(start_height_m=0.001, step_m=0.001)
    with pytest.raises(CalibrationError, match=r"no mark from 4 dabs at \+1\.00 \.\. -2\.00 mm"):
        find_brush_height(arm, camera_check(arm, film_arm=False), config)
    heights = [h for _, _, h in arm.dabs]
    assert heights == pytest.approx([0.001, 0.0, -0.001, -0.002]) and min(heights) >= -0.002
    with pytest.raises(SafetyError, match="probe_floor_m"):
        arm.dab(0.05, 0.05, -0.0021)  # the arm refuses on its own, too
    with pytest.raises(ValueError, match=r"deeper than Workspace\.probe_floor_m"):
        find_brush_height(arm, camera_check(arm), BrushHeightConfig(lowest_m=-0.003))
    assert len(arm.dabs) == 4  # nothing more was sent


def test_first_dab_marking_is_refused_and_a_person_can_answer():
    arm = make_arm(SimArmConfig(surface_error_m=0.002))
    arm.connect()
    with pytest.raises(CalibrationError, match="already left a mark"):
        find_brush_height(arm, camera_check(arm), BrushHeightConfig(start_height_m=0.001))
    answers = iter(["", "maybe", "n", "N", "yes"])
    asked = []
    person = PersonMarkCheck(lambda prompt: asked.append(prompt) or next(answers))
    result = find_brush_height(arm, person, BrushHeightConfig(start_height_m=0.004))
    assert result.surface_offset_m == pytest.approx(0.003) and len(result.dabs) == 3
    assert asked[0].startswith("dab 1 at +4.00 mm") and len(asked) == 5


def test_grbl_dab_on_the_emulator_goes_exactly_to_the_height():
    emulator = GrblEmulator(max_rate_hz=5000.0, time_scale=100.0, settings={110: 8000.0})
    arm = make_arm(GrblArmConfig(port=emulator.start(), surface_z_mm=-20.0))
    arm.connect()
    try:
        arm.dab(0.05, 0.04, -0.0015, dip=True)
        zs = [m.pos[2] for m in emulator.log]
        assert min(zs) == pytest.approx(-20.0 - arm.config.station_depth_mm)  # the paint well
        dab = [m for m in emulator.log if m.pos[:2] == (50.0, 175.9)]  # machine Y up
        assert min(m.pos[2] for m in dab) == pytest.approx(-21.5)
        assert emulator.log[-1].text == "G4P0" and zs[-1] == pytest.approx(0.0)  # lifted
        sent = len(emulator.log)
        with pytest.raises(SafetyError):
            arm.dab(0.05, 0.04, -0.011)  # below Workspace.probe_floor_m
        assert len(emulator.log) == sent
    finally:
        arm.disconnect()
        emulator.close()


def test_ros2_dab_and_the_calibrated_surface_in_the_base_frame():
    arm = make_arm(Ros2ArmConfig())  # not connected: kinematics only
    arm.brush_height = BrushHeight(0.002, 0.0005, press_depth_m=0.005)
    assert arm.frame.origin_m[2] == pytest.approx(0.022) and arm.press_depth_m == 0.005
    motion = dab_motion(0.1, 0.08, -0.001, (0.0, 0.0, 0.02), arm.config.workspace, 0.2, 0.02, 0.005)
    q = joint_trajectory(arm.chain, arm.frame, motion, arm.joints, 1.0).q
    tips = np.array([arm.tip(qk) for qk in q])
    lowest = arm.chain.fk(q[int(np.argmin(tips[:, 2]))])[:3, 3]
    np.testing.assert_allclose(lowest, arm.frame.to_base([[0.1, 0.08]], -0.001)[0], atol=1e-5)


def test_cofrida_robot_brush_height_sim(capsys):
    args = ["robot", "brush-height", "--arm.type=sim", "--arm.name=simbot",
            "--arm.surface_error_m=0.0008", "--camera.type=sim", "--camera.width=480",
            "--camera.height=360", "--start-mm", "2"]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert 0.3 < summary["surface_offset_mm"] <= 0.8 and summary["dabs"] == 4
    assert summary["saved"].endswith("calibrations/simbot/brush_height.json")
    assert "dab 4/25 at +0.50 mm: mark" in captured.err


def test_cofrida_robot_brush_height_asks_a_person_without_a_camera(capsys, monkeypatch):
    answers = iter(["n", "n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    args = ["robot", "brush-height", "--arm.type=sim", "--arm.name=asked", "--ask",
            "--start-mm", "3", "--press-depth-mm", "2.5"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["surface_offset_mm"] == 2.0 and summary["press_depth_mm"] == 2.5
    assert make_arm(SimArmConfig(name="asked")).brush_height.press_depth_m == 0.0025
