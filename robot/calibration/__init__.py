"""Calibration: canvas homography (ArUco), colour correction, saved per robot.

- `calibrate_canvas(image, canvas)` -> `CanvasCalibration`: finds the four ArUco markers at the
  canvas corners, fits the homography camera image -> canvas pixels, reports the reprojection
  error, and `rectify(image)` gives the canvas image at the canvas' pixel size. No clicking.
- `calibrate_color(rectified, canvas, reference)` -> `ColorCalibration`: a 3x4 matrix in linear
  RGB fitted by least squares on a swatch chart, with mean Delta-E (CIEDE2000) before/after.
- `find_brush_height(arm, check)` -> `BrushHeight`: dabs lower and lower at a test spot until
  the camera (`CameraMarkCheck`) or a person (`PersonMarkCheck`) sees a mark; the surface height
  relative to the arm's configured one.
- `calibrate_robot_to_canvas(arm, camera, canvas_calibration)` -> `RobotToCanvas`: the arm dots a
  grid, the camera finds the dots (`robot.calibration.marks`), an affine map commanded -> actual
  canvas position is fitted; arms apply it before their safety check.
- `save_calibration` / `load_calibration`: JSON under
  ``sim.user_data.user_data_dir("calibrations", robot_name)``; arms load ``robot_to_canvas`` and
  ``brush_height`` saved under their name when they are built.
"""

from robot.calibration.brush_height import (
    BrushHeight,
    BrushHeightConfig,
    CameraMarkCheck,
    PersonMarkCheck,
    find_brush_height,
)
from robot.calibration.canvas import CanvasCalibration, calibrate_canvas
from robot.calibration.color import (
    ColorCalibration,
    calibrate_color,
    chart_colors,
    chart_image,
    sample_chart,
)
from robot.calibration.robot_to_canvas import (
    RobotToCanvas,
    RobotToCanvasConfig,
    calibrate_robot_to_canvas,
    verify_robot_to_canvas,
)
from robot.calibration.store import (
    calibration_path,
    find_calibration,
    load_calibration,
    save_calibration,
)

__all__ = [
    "BrushHeight",
    "BrushHeightConfig",
    "CameraMarkCheck",
    "CanvasCalibration",
    "ColorCalibration",
    "PersonMarkCheck",
    "RobotToCanvas",
    "RobotToCanvasConfig",
    "calibrate_canvas",
    "calibrate_color",
    "calibrate_robot_to_canvas",
    "calibration_path",
    "chart_colors",
    "chart_image",
    "find_brush_height",
    "find_calibration",
    "load_calibration",
    "sample_chart",
    "save_calibration",
    "verify_robot_to_canvas",
]
