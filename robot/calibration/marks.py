"""New marks on the canvas between two camera frames: where they are, to a fraction of a pixel.

Used by the robot-to-canvas calibration (the dots the arm made), the brush-height procedure (did
a dab leave a mark?) and stroke capture (`crop_darkness`). Both frames are rectified through the
canvas calibration straight into a window of canvas meters at a chosen resolution (one bilinear
interpolation), differenced as relative loss of light (`crop_darkness`: light falling off across
the paper cancels), thresholded, closed, and split into connected components. Each component's
position is its darkness-weighted centroid in canvas meters.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot.calibration.canvas import CanvasCalibration


@dataclass(frozen=True)
class CanvasWindow:
    """A rectangle of the canvas sampled on a square pixel grid.

    Attributes:
        origin_m: (x, y) canvas meters of the window's top-left edge.
        size_m: (width, height) meters.
        m_per_px: meters per pixel (e.g. 0.00025 = 4 px/mm).
    """

    origin_m: tuple[float, float]
    size_m: tuple[float, float]
    m_per_px: float

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the sampled window."""
        return (
            max(1, round(self.size_m[1] / self.m_per_px)),
            max(1, round(self.size_m[0] / self.m_per_px)),
        )

    def px_to_m(self, cols_rows: np.ndarray) -> np.ndarray:
        """(N, 2) pixel (col, row) indices, centres at integers -> (N, 2) canvas meters."""
        return np.asarray(self.origin_m) + (np.asarray(cols_rows, np.float64) + 0.5) * self.m_per_px

    @classmethod
    def around(cls, center_m, radius_m: float, m_per_px: float) -> CanvasWindow:
        """The square of half-side ``radius_m`` centred on ``center_m`` (x, y) meters."""
        x, y = (float(v) for v in center_m)
        return cls((x - radius_m, y - radius_m), (2 * radius_m, 2 * radius_m), m_per_px)


@dataclass(frozen=True)
class Mark:
    """One new mark.

    Attributes:
        xy_m: (x, y) canvas meters of its darkness-weighted centroid.
        area_mm2: area above the darkness threshold (mm^2).
        peak_darkness: its darkest pixel, 0..1 (relative loss of light).
    """

    xy_m: tuple[float, float]
    area_mm2: float
    peak_darkness: float


def crop_darkness(reference: np.ndarray, after: np.ndarray, color) -> np.ndarray:
    """Ink darkness (H, W) in 0..1 from a blank and a painted crop ((H, W, 3) RGB 0..255).

    Per channel the relative loss of light, max(0, ref - after) / ref, averaged with weights
    1 - paint colour (a channel the paint does not absorb carries no signal).
    """
    weights = np.clip(1.0 - np.asarray(color, np.float32), 0.0, 1.0) + 1e-3
    weights = weights / weights.sum()
    loss = np.maximum(reference - after, 0.0) / np.maximum(reference, 1.0)  # (H, W, 3)
    return np.clip(loss @ weights, 0.0, 1.0)


def rectify_window(
    calibration: CanvasCalibration, frame: np.ndarray, window: CanvasWindow
) -> np.ndarray:
    """A window of the canvas straight out of a camera frame.

    Args:
        calibration: the canvas calibration of the camera.
        frame: (H, W, 3) camera frame, uint8 or float 0..255, of the calibration's size.
        window: which part of the canvas, at which resolution.
    Returns:
        (rows, cols, 3) float32 RGB 0..255; pixel (col, row) is centred at
        ``window.px_to_m([[col, row]])``. Outside the frame the border is repeated.
    """
    h, w = frame.shape[:2]
    if (w, h) != tuple(calibration.image_size):
        raise ValueError(f"frame is {w}x{h} px but the calibration is for {calibration.image_size}")
    sx, sy = calibration.canvas.px_per_m
    to_m = np.array([[1 / sx, 0, 0.5 / sx], [0, 1 / sy, 0.5 / sy], [0, 0, 1]])  # canvas px -> m
    m, (ox, oy) = window.m_per_px, window.origin_m
    to_window = np.array([[1 / m, 0, -ox / m - 0.5], [0, 1 / m, -oy / m - 0.5], [0, 0, 1]])
    rows, cols = window.shape
    return cv2.warpPerspective(
        np.asarray(frame, np.float32), to_window @ to_m @ calibration.homography, (cols, rows),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def find_marks(
    calibration: CanvasCalibration,
    before: np.ndarray,
    after: np.ndarray,
    window: CanvasWindow,
    color=(0.0, 0.0, 0.0),
    darkness: float = 0.3,
    min_area_mm2: float = 0.3,
) -> list[Mark]:
    """Marks present in ``after`` but not in ``before`` inside ``window``, largest first.

    Args:
        calibration: the canvas calibration of the camera.
        before, after: (H, W, 3) camera frames (uint8 or float 0..255) of the same scene.
        window: where to look, and at which resolution.
        color: sRGB 0..1 of the paint (chooses the channels that carry its signal).
        darkness: relative loss of light (0..1) a pixel needs to count as marked; camera noise
            is about 0.01-0.02, a dark paint on white paper 0.5-0.95.
        min_area_mm2: smaller components are noise or dust, not marks.
    """
    dark = crop_darkness(
        rectify_window(calibration, before, window),
        rectify_window(calibration, after, window),
        color,
    )  # fmt: skip  (rows, cols) 0..1
    mask = (dark > darkness).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))  # bristle gaps
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    px_mm2 = (window.m_per_px * 1000.0) ** 2
    marks = []
    for k in range(1, count):  # label 0 is the background
        area_mm2 = float(stats[k, cv2.CC_STAT_AREA]) * px_mm2
        if area_mm2 < min_area_mm2:
            continue
        rows, cols = np.nonzero(labels == k)
        weight = dark[rows, cols].astype(np.float64)  # (P,) soft edges give sub-pixel centroids
        centre = np.array([[cols @ weight, rows @ weight]]) / max(weight.sum(), 1e-12)
        xy = window.px_to_m(centre)[0]
        marks.append(Mark((float(xy[0]), float(xy[1])), area_mm2, float(weight.max())))
    return sorted(marks, key=lambda m: -m.area_mm2)
