"""Canvas calibration: ArUco corner markers -> homography -> rectified canvas image."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from robot.calibration.markers import DEFAULT_DICTIONARY, aruco_dictionary, marker_corners_m
from sim.canvas import Canvas


@dataclass
class CanvasCalibration:
    """Camera image -> canvas pixels.

    Attributes:
        homography: (3, 3) image px -> canvas px (pixel centres at integers, OpenCV's way).
        canvas: the canvas (meters and the pixel size it is rectified to).
        image_size: (width, height) px of the camera frames it applies to.
        reprojection_rms_px, reprojection_max_px: marker corners, detected vs. re-projected
            through the fit, in camera pixels.
        markers_found: ids of the markers used.
    """

    homography: np.ndarray
    canvas: Canvas
    image_size: tuple[int, int]
    reprojection_rms_px: float
    reprojection_max_px: float
    markers_found: list[int]

    def rectify(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) camera frame -> (canvas.height_px, canvas.width_px, 3) canvas image."""
        h, w = image.shape[:2]
        if (w, h) != tuple(self.image_size):
            raise ValueError(f"frame is {w}x{h} px but the calibration is for {self.image_size}")
        size = (self.canvas.width_px, int(self.canvas.height_px))
        return cv2.warpPerspective(image, self.homography, size, flags=cv2.INTER_LINEAR)

    def canvas_m_to_image(self, points_m: np.ndarray) -> np.ndarray:
        """(N, 2) canvas meters -> (N, 2) camera image px."""
        px = _m_to_canvas_px(np.asarray(points_m, np.float64), self.canvas)
        inv = np.linalg.inv(self.homography)
        return cv2.perspectiveTransform(px[None], inv)[0]

    def to_dict(self) -> dict:
        return {
            "homography": self.homography.tolist(),
            "canvas": self.canvas.to_dict(),
            "image_size": list(self.image_size),
            "reprojection_rms_px": self.reprojection_rms_px,
            "reprojection_max_px": self.reprojection_max_px,
            "markers_found": list(self.markers_found),
        }

    @classmethod
    def from_dict(cls, data: dict) -> CanvasCalibration:
        return cls(
            homography=np.array(data["homography"], dtype=np.float64),
            canvas=Canvas.from_dict(data["canvas"]),
            image_size=tuple(data["image_size"]),
            reprojection_rms_px=float(data["reprojection_rms_px"]),
            reprojection_max_px=float(data["reprojection_max_px"]),
            markers_found=list(data["markers_found"]),
        )


def _m_to_canvas_px(points_m: np.ndarray, canvas: Canvas) -> np.ndarray:
    sx, sy = canvas.px_per_m
    return points_m * np.array([sx, sy]) - 0.5


def calibrate_canvas(
    image: np.ndarray,
    canvas: Canvas,
    marker_size_m: float = 0.03,
    dictionary: str = DEFAULT_DICTIONARY,
    min_markers: int = 3,
) -> CanvasCalibration:
    """Find the corner markers in a camera frame and fit the homography.

    Args:
        image: (H, W, 3) uint8 RGB camera frame.
        canvas: canvas size (m) and the pixel size to rectify to.
        marker_size_m: side of the printed markers (m).
        dictionary: OpenCV ArUco dictionary name.
        min_markers: fewest markers (of 4) to accept; 3 still fixes a homography.
    Raises:
        ValueError: too few markers found (the message lists which were seen).
    """
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(aruco_dictionary(dictionary), params)
    corners, ids, _ = detector.detectMarkers(gray)
    layout = marker_corners_m(canvas.width_m, canvas.height_m, marker_size_m)
    found = [] if ids is None else [int(i) for i in ids.ravel()]
    usable = [(i, c[0]) for i, c in zip(found, corners, strict=True) if i in layout]
    if len(usable) < min_markers:
        raise ValueError(
            f"found markers {sorted(found)} but need at least {min_markers} of ids "
            f"{sorted(layout)} ({dictionary}) at the canvas corners; check lighting and framing"
        )
    img_pts = np.concatenate([c for _, c in usable]).astype(np.float64)  # (4M, 2)
    world = np.concatenate([layout[i] for i, _ in usable])  # (4M, 2) meters
    canvas_pts = _m_to_canvas_px(world, canvas)
    homography, _ = cv2.findHomography(img_pts, canvas_pts, method=0)
    reproj = cv2.perspectiveTransform(canvas_pts[None], np.linalg.inv(homography))[0]
    err = np.linalg.norm(reproj - img_pts, axis=1)
    h, w = image.shape[:2]
    return CanvasCalibration(
        homography=homography,
        canvas=canvas,
        image_size=(w, h),
        reprojection_rms_px=float(np.sqrt((err**2).mean())),
        reprojection_max_px=float(err.max()),
        markers_found=sorted(i for i, _ in usable),
    )
