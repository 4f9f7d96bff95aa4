"""`OpenCVCamera`: frames from ``cv2.VideoCapture`` as RGB uint8 arrays."""

from __future__ import annotations

import cv2
import numpy as np

from robot.cameras.camera import Camera
from robot.cameras.opencv.config import OpenCVCameraConfig
from robot.errors import DeviceConnectionError, refuses_reconnect, requires_connection


class OpenCVCamera(Camera):
    """A camera through OpenCV. See `OpenCVCameraConfig`.

    Width and height are requested from the device; frames of another size are returned as
    the device gives them (check ``frame.shape``).
    """

    config_class = OpenCVCameraConfig

    def __init__(self, config: OpenCVCameraConfig) -> None:
        super().__init__(config)
        self._cap: cv2.VideoCapture | None = None

    @property
    def is_connected(self) -> bool:
        return self._cap is not None

    @refuses_reconnect
    def connect(self) -> None:
        c = self.config
        source = int(c.device) if c.device.isdigit() else c.device
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            cap.release()
            raise DeviceConnectionError(
                f"OpenCV could not open camera {c.device!r}: check the index or path "
                "(ls /dev/video*), that no other program holds it, and the permissions"
            )
        if isinstance(source, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
            if c.fps > 0:
                cap.set(cv2.CAP_PROP_FPS, c.fps)
            for _ in range(c.warmup_frames):
                cap.read()
        self._cap = cap

    @requires_connection
    def capture(self) -> np.ndarray:
        """One frame: (H, W, 3) uint8 RGB. Raises DeviceConnectionError when none comes."""
        for _ in range(self.config.read_attempts):
            ok, frame = self._cap.read()
            if ok and frame is not None:
                if frame.ndim == 2:
                    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
                return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        raise DeviceConnectionError(
            f"camera {self.config.device!r} gave no frame in {self.config.read_attempts} reads "
            "(unplugged, or the end of a file/sequence)"
        )

    def disconnect(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap = None
