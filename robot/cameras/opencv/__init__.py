"""A USB / webcam (or a video file, or a numbered image sequence) through OpenCV."""

from robot.cameras.opencv.config import OpenCVCameraConfig

__all__ = ["OpenCVCameraConfig"]
