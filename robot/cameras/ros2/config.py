"""Config of the ROS 2 camera (type ``ros2``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot.cameras.config import CameraConfig, register_camera_config


@register_camera_config("ros2")
@dataclass
class Ros2CameraConfig(CameraConfig):
    """Frames from a ``sensor_msgs/Image`` topic (rgb8, bgr8, rgba8, bgra8 or mono8).

    ``width`` / ``height`` are not requested from the publisher; frames come at its size.
    """

    driver = "robot.cameras.ros2.ros2_camera:Ros2Camera"

    topic: str = "/camera/image_raw"  # sensor_msgs/Image topic
    timeout_s: float = 5.0  # s to wait for a first frame (connect) or a fresh one (capture)
    max_age_s: float = 1.0  # s: capture waits for a newer frame when the latest is older

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.topic:
            raise ValueError("topic must name a sensor_msgs/Image topic")
        for name in ("timeout_s", "max_age_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
