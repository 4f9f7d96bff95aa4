"""Config of OpenCV cameras (type ``opencv``)."""

from __future__ import annotations

from dataclasses import dataclass

from robot.cameras.config import CameraConfig, register_camera_config


@register_camera_config("opencv")
@dataclass
class OpenCVCameraConfig(CameraConfig):
    """A device OpenCV's ``VideoCapture`` opens: an index ("0"), a path ("/dev/video2"), a
    video file or an image sequence ("frames/img_%03d.png")."""

    driver = "robot.cameras.opencv.opencv_camera:OpenCVCamera"

    device: str = "0"  # camera index, device path, video file or printf-style image pattern
    fps: float = 0.0  # frames/s to request; 0 = the device's default
    warmup_frames: int = 5  # frames dropped after opening: auto-exposure settles on them
    read_attempts: int = 3  # reads tried before capture() fails: USB cameras drop frames

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.warmup_frames < 0 or self.read_attempts < 1 or self.fps < 0:
            raise ValueError("warmup_frames >= 0, read_attempts >= 1 and fps >= 0 required")
