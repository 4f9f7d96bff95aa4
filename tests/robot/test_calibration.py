import cv2
import numpy as np
import pytest

from robot.arms import make_arm
from robot.arms.sim import SimArmConfig
from robot.calibration import (
    CanvasCalibration,
    ColorCalibration,
    calibrate_canvas,
    calibrate_color,
    chart_colors,
    chart_image,
    load_calibration,
    sample_chart,
    save_calibration,
)
from robot.cameras import make_camera
from robot.cameras.sim import SimCameraConfig
from sim.palette import Palette


@pytest.fixture(scope="module")
def capture():
    """A sim camera frame of a colour chart on the sim arm's canvas."""
    arm = make_arm(SimArmConfig(canvas_px=384))
    arm.connect()
    colors = chart_colors(Palette.preset("acrylic"))
    arm.load_canvas_image(chart_image(arm.canvas, colors))
    cam = make_camera(SimCameraConfig(), arm=arm)
    cam.connect()
    return arm.canvas, cam, cam.capture(), colors


def test_canvas_homography_recovers_the_corners_within_a_pixel(capture):
    canvas, cam, frame, _ = capture
    cal = calibrate_canvas(frame, canvas, marker_size_m=cam.config.marker_size_m)
    assert cal.markers_found == [0, 1, 2, 3] and cal.reprojection_max_px < 1.0
    w, h = canvas.width_m, canvas.height_m
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h], [w / 2, h / 2]])
    truth = cv2.perspectiveTransform(corners[None], cam.canvas_to_image)[0]
    assert np.linalg.norm(cal.canvas_m_to_image(corners) - truth, axis=1).max() < 1.0
    rect = cal.rectify(frame)
    assert rect.shape == (canvas.height_px, canvas.width_px, 3)
    again = CanvasCalibration.from_dict(cal.to_dict())
    np.testing.assert_allclose(again.homography, cal.homography)


def test_colour_correction_brings_mean_delta_e_within_3(capture):
    canvas, cam, frame, colors = capture
    cal = calibrate_canvas(frame, canvas, marker_size_m=cam.config.marker_size_m)
    measured = sample_chart(cal.rectify(frame), canvas, len(colors))
    color = calibrate_color(measured, colors)
    assert color.delta_e_before > 3.0  # the camera's colour cast is real
    assert color.delta_e_after <= 3.0
    corrected = color.apply(np.round(measured[None] * 255).astype(np.uint8))[0] / 255.0
    assert np.abs(corrected - colors).mean() < 0.03
    path = save_calibration("bench-robot", "color", color.to_dict())
    assert path.name == "color.json" and "calibrations" in str(path)
    loaded = ColorCalibration.from_dict(load_calibration("bench-robot", "color"))
    np.testing.assert_allclose(loaded.matrix, color.matrix)


def test_missing_markers_and_calibrations_fail_clearly(capture):
    canvas, _, frame, _ = capture
    with pytest.raises(ValueError, match="found markers"):
        calibrate_canvas(np.full_like(frame, 255), canvas)
    with pytest.raises(FileNotFoundError, match="cofrida robot calibrate"):
        load_calibration("nobody", "canvas")
