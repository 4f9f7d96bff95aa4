"""`Ros2Camera`: subscribes to a ``sensor_msgs/Image`` topic; `capture` returns the latest."""

from __future__ import annotations

import threading
import time

import numpy as np

from robot.cameras.camera import Camera
from robot.cameras.ros2.config import Ros2CameraConfig
from robot.errors import DeviceConnectionError, refuses_reconnect, requires_connection

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_rgb(msg) -> np.ndarray:
    """``sensor_msgs/Image`` -> (H, W, 3) uint8 RGB (copies; honours ``step`` padding)."""
    if msg.encoding not in _CHANNELS:
        raise ValueError(f"unsupported image encoding {msg.encoding!r}; use {sorted(_CHANNELS)}")
    c = _CHANNELS[msg.encoding]
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    rows = raw.reshape(msg.height, msg.step)[:, : msg.width * c]  # (H, W*C)
    img = rows.reshape(msg.height, msg.width, c)  # (H, W, C)
    if msg.encoding == "mono8":
        img = np.repeat(img, 3, axis=2)
    elif msg.encoding.startswith("bgr"):
        img = img[:, :, 2::-1]
    return np.ascontiguousarray(img[:, :, :3])


def rgb_to_image(rgb: np.ndarray, frame_id: str = "camera", stamp=None):
    """(H, W, 3) uint8 RGB -> ``sensor_msgs/Image`` (rgb8)."""
    from sensor_msgs.msg import Image

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape}")
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3)
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    msg.data = rgb.tobytes()
    return msg


class Ros2Camera(Camera):
    """The ROS 2 camera. See `Ros2CameraConfig`."""

    config_class = Ros2CameraConfig

    def __init__(self, config: Ros2CameraConfig) -> None:
        super().__init__(config)
        self._ros = None
        self._frame: np.ndarray | None = None
        self._frame_time = 0.0
        self._new_frame = threading.Condition()

    @property
    def is_connected(self) -> bool:
        return self._ros is not None

    @refuses_reconnect
    def connect(self) -> None:
        """Subscribe and wait up to ``timeout_s`` for a first frame."""
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from robot.ros.background import BackgroundNode

        ros = BackgroundNode("cofrida_ros2_camera")
        ros.node.create_subscription(
            Image, self.config.topic, self._on_image, qos_profile_sensor_data
        )
        self._ros = ros
        if not self._wait_frame(after=0.0):
            self.disconnect()
            raise DeviceConnectionError(
                f"no image on {self.config.topic} within {self.config.timeout_s} s"
            )

    def _on_image(self, msg) -> None:
        frame = image_to_rgb(msg)
        with self._new_frame:
            self._frame, self._frame_time = frame, time.monotonic()
            self._new_frame.notify_all()

    def _wait_frame(self, after: float) -> bool:
        with self._new_frame:
            return self._new_frame.wait_for(
                lambda: self._frame is not None and self._frame_time > after, self.config.timeout_s
            )

    @requires_connection
    def capture(self) -> np.ndarray:
        """The latest frame, (H, W, 3) uint8 RGB; waits for a fresh one when the latest is older
        than ``max_age_s``. Raises `DeviceConnectionError` after ``timeout_s`` without one."""
        stale = time.monotonic() - self._frame_time > self.config.max_age_s
        if stale and not self._wait_frame(after=self._frame_time):
            raise DeviceConnectionError(
                f"no new image on {self.config.topic} for {self.config.timeout_s} s"
            )
        with self._new_frame:
            return self._frame.copy()

    def disconnect(self) -> None:
        if self._ros is not None:
            self._ros.close()
        self._ros = None
