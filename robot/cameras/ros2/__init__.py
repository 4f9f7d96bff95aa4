"""ROS 2 camera (type ``ros2``): the latest frame of a ``sensor_msgs/Image`` topic."""

from robot.cameras.ros2.config import Ros2CameraConfig

__all__ = ["Ros2CameraConfig"]
