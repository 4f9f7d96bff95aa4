"""Where the ArUco markers sit around the canvas (shared by the sim camera and calibration).

Four markers of side ``size_m`` touch the canvas at its corners from outside: id 0 top-left,
1 top-right, 2 bottom-right, 3 bottom-left. Each corner of the canvas is a corner of its marker,
so the markers fix the canvas' outline exactly; all 16 marker corners are used for the fit.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_DICTIONARY = "DICT_4X4_50"


def aruco_dictionary(name: str = DEFAULT_DICTIONARY):
    """An OpenCV predefined ArUco dictionary by name (e.g. "DICT_4X4_50")."""
    if not name.startswith("DICT_") or not hasattr(cv2.aruco, name):
        raise ValueError(f"unknown ArUco dictionary {name!r} (e.g. 'DICT_4X4_50')")
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


def marker_corners_m(width_m: float, height_m: float, size_m: float) -> dict[int, np.ndarray]:
    """{marker id: (4, 2) corners in canvas meters}, in ArUco order (TL, TR, BR, BL)."""
    s = size_m
    origins = {0: (-s, -s), 1: (width_m, -s), 2: (width_m, height_m), 3: (-s, height_m)}
    square = np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64)
    return {i: square + np.array(o) for i, o in origins.items()}
