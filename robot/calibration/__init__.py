"""Calibration: canvas homography (ArUco), colour correction, saved per robot.

- `calibrate_canvas(image, canvas)` -> `CanvasCalibration`: finds the four ArUco markers at the
  canvas corners, fits the homography camera image -> canvas pixels, reports the reprojection
  error, and `rectify(image)` gives the canvas image at the canvas' pixel size. No clicking.
- `calibrate_color(rectified, canvas, reference)` -> `ColorCalibration`: a 3x4 matrix in linear
  RGB fitted by least squares on a swatch chart, with mean Delta-E (CIEDE2000) before/after.
- `save_calibration` / `load_calibration`: JSON under
  ``sim.user_data.user_data_dir("calibrations", robot_name)``.
"""

from robot.calibration.canvas import CanvasCalibration, calibrate_canvas
from robot.calibration.color import (
    ColorCalibration,
    calibrate_color,
    chart_colors,
    chart_image,
    sample_chart,
)
from robot.calibration.store import calibration_path, load_calibration, save_calibration

__all__ = [
    "CanvasCalibration",
    "ColorCalibration",
    "calibrate_canvas",
    "calibrate_color",
    "calibration_path",
    "chart_colors",
    "chart_image",
    "load_calibration",
    "sample_chart",
    "save_calibration",
]
