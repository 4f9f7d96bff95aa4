"""Cameras: the `Camera` base class, its config registry and one subfolder per driver.

Built-in types: ``sim`` (renders the simulated canvas as a camera sees it) and ``opencv``
(USB / webcam through OpenCV). Build one from a config with `make_camera`.
"""

from robot.cameras.camera import Camera
from robot.cameras.config import (
    CameraConfig,
    camera_config_class,
    camera_types,
    make_camera,
    register_camera_config,
)

__all__ = [
    "Camera",
    "CameraConfig",
    "camera_config_class",
    "camera_types",
    "make_camera",
    "register_camera_config",
]
